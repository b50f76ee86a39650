"""Concurrent searches of the same shards run as one FAISS call.

Searches run on the event loop, one at a time (server.py). While one runs,
others arrive; each waits here, and once the loop has had a turn in which
no search came in, every search waiting for the same query (tenant, shards,
mode, depth, threshold) is answered by one search over all their queries.
Nothing waits on a timer: a lone search runs after one idle turn of the
loop (microseconds), so batches form only under load, and their size
follows it. gRPC hands over the requests that piled up during a search one
per turn or so, hence the idle turn rather than the next one.

One FAISS call for 32 queries costs far less than 32 calls: at 100k faces on
two cores 55 ms against 32 x 7.5 ms; on an H200 at 1M faces 16 clients got
2.9x one client's rate (bench/history/2026-11-25-to-2026-12-05.md, On an H200).
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from .follower import Follower
from .registry import Matches, Query

# Searches answered together: the same query and the same vector size.
BatchKey = tuple[Query, int]


class SearchBatcher:
    def __init__(self, store: Follower) -> None:
        self.store = store
        self._waiting: dict[BatchKey, list[tuple[npt.NDArray[np.float32], asyncio.Future[Matches]]]] = {}
        self._arrived = 0  # searches that joined since the last turn
        self.batches = 0  # FAISS calls made (tests read it)

    async def search(self, query: Query, queries: npt.NDArray[np.float32]) -> Matches:
        key = (query, queries.shape[1])
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Matches] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._run_when_quiet, loop)
        self._waiting.setdefault(key, []).append((queries, answer))
        self._arrived += 1
        return await answer

    def _run_when_quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._arrived:  # others came in during the last turn: give them one more
            self._arrived = 0
            loop.call_soon(self._run_when_quiet, loop)
            return
        self._run()

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for key, items in waiting.items():
            self.batches += 1
            try:
                found = self.store.search(key[0], np.concatenate([q for q, _ in items]))
            except Exception as exc:
                for _, answer in items:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            start = 0
            for queries, answer in items:
                if not answer.done():  # a cancelled call (its client went away) wants nothing
                    answer.set_result(Matches(found.hits[start : start + len(queries)], found.faces))
                start += len(queries)
