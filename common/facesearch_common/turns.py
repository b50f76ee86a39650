"""Batches that form in the event loop's quiet turns.

Work added under a key waits until the loop has had a turn in which nothing
was added, then everything waiting goes to `flush` at once, by key. Nothing
waits on a timer: a lone item is flushed after one idle turn of the loop
(microseconds), so batches form only under load, and their size follows
it. gRPC hands over requests (and answers) that arrive together one per
turn or so, hence the idle turn rather than the next one.

The indexer forms its FAISS calls this way (indexer/batching.py), and the
gateway its calls to an indexer (gateway/indexer_client.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 (an item, as K is a key)


class QuietTurns(Generic[K, I]):
    def __init__(self, flush: Callable[[dict[K, list[I]]], None]) -> None:
        self._flush = flush
        self._waiting: dict[K, list[I]] = {}
        self._arrived = 0  # items added since the last turn

    def add(self, key: K, item: I) -> None:
        """Queues `item`; it is flushed with the others of `key` once the loop is quiet."""
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._when_quiet)
        self._waiting.setdefault(key, []).append(item)
        self._arrived += 1

    def _when_quiet(self) -> None:
        if self._arrived:  # others came in during the last turn: give them one more
            self._arrived = 0
            asyncio.get_running_loop().call_soon(self._when_quiet)
            return
        waiting, self._waiting = self._waiting, {}
        self._flush(waiting)
