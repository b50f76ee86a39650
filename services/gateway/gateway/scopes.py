"""Searches' scope reads, shared.

A search must see every write acknowledged before it was asked, so it reads
the change log's end (and its collections) from PostgreSQL: the indexers
answer from at least there. Any read *sent* after the search was asked will
do, since PostgreSQL takes the statement's snapshot after it arrives. So one
read serves every search of the same scope that was asked before it was
sent, and searches that wait for the face model meanwhile share it: under
load, one read a few searches instead of one each.

Order is kept with a counter rather than a clock: the event loop runs one
thing at a time, so "read n was sent after ticket t was taken" is n > t.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from facesearch_common.database import UNREACHABLE

from . import metrics
from .catalog import Scope

KEPT = 10_000  # scopes (tenant, collections) remembered
Key = tuple[str, tuple[str, ...]]
V = TypeVar("V")
ReadScope = Callable[[str, Sequence[str]], Awaitable[Scope]]


class ScopeReads:
    def __init__(self, read: ReadScope, kept: int = KEPT):
        self._read = read
        self._kept = kept
        self._sent = 0  # reads sent so far
        # The latest read of each scope: its number and its answer (maybe
        # still coming).
        self._latest: dict[Key, tuple[int, asyncio.Future[Scope]]] = {}
        # The newest scope each key read, and that read's number: while the
        # database is unreachable, searches of loaded shards answer from it
        # (no write can be acknowledged meanwhile).
        self._last: dict[Key, tuple[int, Scope]] = {}

    def ticket(self) -> int:
        """Taken when a search is asked: the reads it may use come after."""
        return self._sent

    async def read(self, tenant: str, collections: Sequence[str], ticket: int) -> Scope:
        """The scope as a read sent after `ticket` saw it: one already sent,
        or a new one."""
        key = (tenant, tuple(collections))
        latest = self._latest.get(key)
        answer = latest[1] if latest is not None and latest[0] > ticket else self._send(key)
        try:
            # Shielded: a search that gives up does not cancel the others' read.
            return await asyncio.shield(answer)
        except UNREACHABLE:
            if key not in self._last:
                raise
            return self._last[key][1]

    def _send(self, key: Key) -> asyncio.Future[Scope]:
        self._sent += 1
        number, answer = self._sent, asyncio.ensure_future(self._timed(*key))
        answer.add_done_callback(lambda done: self._settled(key, number, done))
        self._remember(self._latest, key, (number, answer))
        return answer

    async def _timed(self, tenant: str, collections: Sequence[str]) -> Scope:
        with metrics.STAGE.labels("database").time():
            return await self._read(tenant, collections)

    def _settled(self, key: Key, number: int, done: asyncio.Future[Scope]) -> None:
        if done.cancelled() or done.exception() is not None:
            # Never shared once failed: the next search reads again.
            if self._latest.get(key, (0, None))[1] is done:
                del self._latest[key]
            return
        if self._last.get(key, (0, None))[0] < number:  # reads may answer out of order
            self._remember(self._last, key, (number, done.result()))

    def _remember(self, kept: dict[Key, V], key: Key, value: V) -> None:
        kept.pop(key, None)
        if len(kept) >= self._kept:
            kept.pop(next(iter(kept)))  # the least recently read
        kept[key] = value
