"""Concurrent searches of the same shards run as one FAISS call.

Searches run on the event loop, one at a time (server.py). While one runs,
others arrive; each waits here, and once the loop has had a turn in which
no search came in (facesearch_common/turns.py), every search waiting for
the same query (tenant, shards, mode, depth, threshold) is answered by one
search over all their queries. A lone search runs after one idle turn of
the loop (microseconds), so batches form only under load.

One FAISS call for 32 queries costs far less than 32 calls: at 100k faces on
two cores 55 ms against 32 x 7.5 ms; on an H200 at 1M faces 16 clients got
2.9x one client's rate (bench/history/2026-11-25-to-2026-12-05.md, On an H200).
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from facesearch_common.turns import QuietTurns

from .follower import Follower
from .registry import Matches, Query

# Searches answered together: the same query and the same vector size.
BatchKey = tuple[Query, int]
Waiting = tuple[npt.NDArray[np.float32], asyncio.Future[Matches]]  # a search's queries and its answer


class SearchBatcher:
    def __init__(self, store: Follower) -> None:
        self.store = store
        self._turns: QuietTurns[BatchKey, Waiting] = QuietTurns(self._run)
        self.batches = 0  # FAISS calls made (tests read it)

    async def search(self, query: Query, queries: npt.NDArray[np.float32]) -> Matches:
        answer: asyncio.Future[Matches] = asyncio.get_running_loop().create_future()
        self._turns.add((query, queries.shape[1]), (queries, answer))
        return await answer

    def _run(self, waiting: dict[BatchKey, list[Waiting]]) -> None:
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
                    answer.set_result(Matches(found.hits[start : start + len(queries)], found.faces, found.approximate))
                start += len(queries)
