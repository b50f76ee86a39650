"""Concurrent searches answered by one FAISS call, each with its own answer."""

import asyncio

import numpy as np
import pytest

from indexer.batching import SearchBatcher
from indexer.follower import Follower
from indexer.registry import DimensionMismatch, Query, Registry
from indexer.shard import Look

DIM = 16


@pytest.fixture
def store():
    """The follower's search over shards filled directly (no database: searches never read it)."""
    rng = np.random.default_rng(0)
    registry = Registry()
    for i in range(60):
        v = rng.standard_normal(DIM).astype("<f4")
        registry.writable(("t", "c1" if i % 2 else "c2"), DIM).add([f"f{i}"], [f"p{i}"], (v / np.linalg.norm(v))[None])
    return Follower(None, registry, "me", ["me"], 1)  # type: ignore[arg-type]


def probes(n: int, seed: int = 1) -> list[np.ndarray]:
    q = np.random.default_rng(seed).standard_normal((n, 1, DIM)).astype(np.float32)
    return list(q / np.linalg.norm(q, axis=2, keepdims=True))


def test_concurrent_searches_share_one_call_and_each_gets_its_own_answer(store):
    batcher = SearchBatcher(store)
    queries = probes(16)

    async def all_at_once():
        query = Query("t", ("c1", "c2"), 5, -1.0, Look.EXACT)
        return await asyncio.gather(*(batcher.search(query, q) for q in queries))

    answers = asyncio.run(all_at_once())
    assert batcher.batches == 1
    assert answers == [store.search(Query("t", ("c1", "c2"), 5, -1.0), q) for q in queries]


def test_different_searches_are_not_mixed_and_an_error_reaches_only_its_own(store):
    batcher = SearchBatcher(store)
    q1, q2, q3 = probes(3)

    async def together():
        return await asyncio.gather(
            batcher.search(Query("t", ("c1",), 3, -1.0, Look.EXACT), q1),
            batcher.search(Query("t", ("c2",), 3, -1.0, Look.EXACT), q2),
            batcher.search(Query("t", ("c1",), 1, -1.0, Look.EXACT), q3),
            batcher.search(Query("t", ("c1",), 3, -1.0, Look.EXACT), np.ones((1, DIM + 1), np.float32)),
            return_exceptions=True,
        )

    c1, c2, shallow, unknown = asyncio.run(together())
    assert batcher.batches == 4
    assert c1 == store.search(Query("t", ("c1",), 3, -1.0), q1) and {h.collection_id for h in c1.hits[0]} == {"c1"}
    assert c2 == store.search(Query("t", ("c2",), 3, -1.0), q2) and {h.collection_id for h in c2.hits[0]} == {"c2"}
    assert len(shallow.hits[0]) == 1 and shallow.faces == c1.faces > 0
    assert isinstance(unknown, DimensionMismatch)


def test_a_lone_search_and_searches_after_it_each_run_without_waiting(store):
    batcher = SearchBatcher(store)
    (q,) = probes(1)

    async def one_after_another():
        first = await batcher.search(Query("t", (), 2, -1.0, Look.FAST), q)
        second = await batcher.search(Query("t", (), 2, -1.0, Look.FAST), q)
        return first, second

    first, second = asyncio.run(one_after_another())
    assert first == second == store.search(Query("t", (), 2, -1.0, Look.FAST), q)
    assert batcher.batches == 2
