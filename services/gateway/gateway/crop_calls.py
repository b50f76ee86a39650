"""Crop-embedder calls shared by the requests that wait on them.

A gateway process keeps at most GATEWAY_EMBEDDER_CALLS calls to the crop
embedder in flight. A request that finds one free goes out at once, alone:
a lone search never waits. Requests that find them all busy queue here,
and when a call comes back the queue goes out in one call: up to an even
share of the crops queued or in flight (so the calls in flight stay alike
in size) and up to the model's max batch. So under load one call carries
many requests' crops, sized by the load, and their answers come back in
the same turn, where their indexer calls are shared too (indexer_client.py).

Triton's dynamic batcher would merge these rows in any case; what sharing
saves is a gRPC call a request, in the gateway and in Triton, and the
indexer calls after it. The wait moves from Triton's queue to this one:
when every call is busy, the model is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import metrics
from .errors import ApiError


@dataclass(frozen=True)
class Crops:
    """One request's crops, each at most the canvas's side; a call puts its
    requests' crops on canvases together (canvas.placed)."""

    pixels: list[npt.NDArray[np.uint8]]  # each [H, W, 3]

    def __len__(self) -> int:
        return len(self.pixels)


Embedded = dict[str, npt.NDArray[np.float32]]  # output name -> [N, ...], row i for crop i
_Waiting = tuple[Crops, "asyncio.Future[Embedded]"]


class SharedCalls:
    def __init__(self, infer: Callable[[Crops], Awaitable[Embedded]], max_calls: int) -> None:
        self._infer = infer
        self._max_calls = max_calls  # 0: no limit, and no sharing
        # The model's max batch (Triton's max_batch_size), once the embedder
        # has said it; until then, and at 0, each request goes alone.
        self.max_rows = 0
        self._waiting: deque[_Waiting] = deque()
        self._in_flight = 0
        self._flying_rows = 0  # crops in the calls in flight
        self._calls: set[asyncio.Task[None]] = set()  # in flight, kept from the garbage collector

    async def embed(self, crops: Crops) -> Embedded:
        if not self._max_calls or not self.max_rows:
            metrics.EMBEDDER_CALL_REQUESTS.observe(1)
            return await self._infer(crops)
        answer: asyncio.Future[Embedded] = asyncio.get_running_loop().create_future()
        self._waiting.append((crops, answer))
        self._send()
        # A request that gives up cancels its own answer only: a call it is
        # in goes on for the others.
        return await answer

    def _send(self) -> None:
        while self._in_flight < self._max_calls:
            batch = self._next_batch()
            if not batch:
                return
            self._in_flight += 1
            self._flying_rows += rows(batch)
            call = asyncio.get_running_loop().create_task(self._call(batch))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    def _next_batch(self) -> list[_Waiting]:
        """Requests from the front of the queue, up to an even share of the
        crops queued or in flight, and at most max_rows; a request with more
        goes alone (Triton says what is wrong with it). On CPU one model
        instance runs a call's crops in turn, so a call that took the whole
        queue held its requests for a quarter of a second while the other
        went round with one or two (a call of 23 crops beside calls of 1
        and 8, measured under load): fewer requests shared each call, and
        each shared call costs the gateway, Triton and the indexer one RPC."""
        share = min(self.max_rows, -(-(rows(self._waiting) + self._flying_rows) // self._max_calls))
        batch: list[_Waiting] = []
        taken = 0
        while self._waiting:
            crops, answer = self._waiting[0]
            if answer.done():  # given up while queued
                self._waiting.popleft()
                continue
            if batch and taken + len(crops) > share:
                break
            batch.append(self._waiting.popleft())
            taken += len(crops)
        return batch

    async def _call(self, batch: list[_Waiting]) -> None:
        metrics.EMBEDDER_CALL_REQUESTS.observe(len(batch))
        try:
            out = await self._infer(joined([crops for crops, _ in batch]))
        except asyncio.CancelledError:  # the gateway stopping
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(_own(exc))
                    answer.exception()  # retrieved, so a request cancelled before it woke logs nothing
            return
        finally:
            self._in_flight -= 1
            self._flying_rows -= rows(batch)
            self._send()
        start = 0
        for crops, answer in batch:
            end = start + len(crops)
            if not answer.done():
                answer.set_result({name: rows[start:end] for name, rows in out.items()})
            start = end


def rows(batch: Iterable[_Waiting]) -> int:
    return sum(len(crops) for crops, _ in batch)


def joined(parts: list[Crops]) -> Crops:
    if len(parts) == 1:
        return parts[0]
    return Crops([pixels for part in parts for pixels in part.pixels])


def _own(exc: Exception) -> Exception:
    """Each request its own error: each raises it in its own task."""
    return ApiError(exc.code, exc.reason, exc.message) if isinstance(exc, ApiError) else exc
