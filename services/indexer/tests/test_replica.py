import faiss
import numpy as np
import pytest

from indexer.replica import Tombstoned


def replica(vectors: np.ndarray, ids, max_k: int = 64) -> Tombstoned:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return Tombstoned(index, np.asarray(ids, np.int64), max_k)


def unit(rng, n, dim=8):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_skips_dead_rows_and_answers_ids_best_first():
    rng = np.random.default_rng(0)
    vectors = unit(rng, 50)
    ids = np.arange(100, 150)
    r = replica(vectors, ids)
    assert r.remove_ids(np.array([100, 103, 103, 999, 149])) == 3  # duplicates and unknowns count once/never
    assert r.remove_ids(np.array([103])) == 0
    assert (r.dead, r.ntotal) == (3, 47)
    live = np.array([i for i in range(50) if i not in (0, 3, 49)])
    queries = unit(rng, 4)
    scores, found = r.search(queries, 10)
    expected = live[np.argsort(-(queries @ vectors[live].T), axis=1)[:, :10]] + 100
    assert (found == expected).all()
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, expected - 100, axis=1), atol=1e-5)


def test_fewer_live_rows_than_k_are_padded_like_faiss():
    rng = np.random.default_rng(1)
    r = replica(unit(rng, 3), [1, 2, 3])
    r.remove_ids(np.array([2]))
    scores, ids = r.search(unit(rng, 1), 5)
    assert sorted(ids[0, :2].tolist()) == [1, 3] and (ids[0, 2:] == -1).all()
    assert np.isneginf(scores[0, 2:]).all()


def test_adds_follow_the_rows_and_ids_must_increase():
    rng = np.random.default_rng(2)
    v = unit(rng, 3)
    r = replica(v[:1], [5])
    r.add_with_ids(v[1:], np.array([7, 9]))
    assert r.search(v[2:3], 1)[1][0, 0] == 9
    with pytest.raises(ValueError):
        r.add_with_ids(v[:1], np.array([8]))
    with pytest.raises(ValueError):
        replica(v, [3, 2, 1])


def test_k_plus_dead_rows_beyond_the_limit_is_refused():
    rng = np.random.default_rng(3)
    r = replica(unit(rng, 20), range(20), max_k=8)
    r.remove_ids(np.arange(4))
    assert r.can_search(4) and not r.can_search(5)
    with pytest.raises(ValueError):
        r.search(unit(rng, 1), 5)
