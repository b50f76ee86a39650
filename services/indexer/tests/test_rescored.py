import faiss
import numpy as np
import pytest

from indexer.rescored import BY_LIST_FROM, BY_QUERY, Rescored, empty_fast_scan, subquantizers

DIM, LISTS = 32, 8


def unit(rng, n, dim=DIM):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def rescored(vectors: np.ndarray, ids: np.ndarray) -> tuple[Rescored, faiss.IndexIDMap2]:
    """Every list visited, so the only approximation left is the codes'."""
    master = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    master.add_with_ids(vectors, ids)
    codes = empty_fast_scan(DIM, LISTS)
    codes.train(vectors)
    codes.add_with_ids(vectors, ids)
    index = Rescored(codes, master.reconstruct_batch)
    index.nprobe = LISTS
    return index, master


def exact(queries, vectors, ids, k):
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(queries @ vectors.T, order, axis=1), ids[order]


def test_rescoring_every_candidate_answers_exactly_and_the_default_finds_the_best():
    rng = np.random.default_rng(0)
    vectors = unit(rng, 2000)
    ids = np.arange(2000, dtype=np.int64) * 3 + 5  # the shard's ids have gaps
    index, _ = rescored(vectors, ids)
    queries = vectors[:20] + 0.1 * unit(rng, 20)
    want_scores, want_ids = exact(queries, vectors, ids, 5)
    # 4-bit codes only choose the candidates; scores and order come from the
    # master copy, so with every face a candidate the answer is exact.
    index.spare = len(vectors)
    scores, found = index.search(queries, 5)
    assert (found == want_ids).all()
    assert np.allclose(scores, want_scores, atol=1e-5)
    index.spare = 64
    scores, found = index.search(queries, 5)
    assert (found[:, 0] == want_ids[:, 0]).all()
    rows = (found - 5) // 3
    assert np.allclose(scores, np.einsum("qkd,qd->qk", vectors[rows], queries), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_removed_ids_are_skipped_counted_once_and_stay_removed_as_the_bitmap_grows():
    rng = np.random.default_rng(1)
    vectors = unit(rng, 500)
    ids = np.arange(500, dtype=np.int64)
    index, master = rescored(vectors, ids)
    assert index.remove_ids(np.array([0, 1, 1])) == 2
    assert index.remove_ids(np.array([1])) == 0
    # A larger id grows the bitmap; the earlier marks must survive it.
    master_rows = [i for i in range(500) if i not in (0, 1, 499)]
    assert index.remove_ids(np.array([499])) == 1
    assert (index.dead, index.ntotal) == (3, 497)
    for gone in (0, 1, 499):
        master.remove_ids(np.array([gone]))  # the shard removes from both
    _, found = index.search(vectors[[0, 1, 499, 2]], 10)
    assert not np.isin(found, [0, 1, 499]).any()
    assert found[3, 0] == 2
    assert np.isin(found, master_rows).all()


def test_fewer_faces_than_k_are_padded_like_faiss():
    rng = np.random.default_rng(2)
    vectors = unit(rng, 300)
    index, master = rescored(vectors, np.arange(300, dtype=np.int64))
    index.remove_ids(np.arange(3, 300))
    master.remove_ids(np.arange(3, 300))
    scores, found = index.search(unit(rng, 2), 6)
    assert sorted(found[0, :3].tolist()) == [0, 1, 2] and (found[:, 3:] == -1).all()
    assert np.isneginf(scores[:, 3:]).all()


def test_faces_added_after_the_build_are_found():
    rng = np.random.default_rng(3)
    vectors = unit(rng, 400)
    index, master = rescored(vectors[:300], np.arange(300, dtype=np.int64))
    index.add_with_ids(vectors[300:], np.arange(1000, 1100, dtype=np.int64))
    master.add_with_ids(vectors[300:], np.arange(1000, 1100, dtype=np.int64))
    _, found = index.search(vectors[350:352], 1)
    assert found[:, 0].tolist() == [1050, 1051]


def test_a_batch_and_its_queries_one_at_a_time_find_the_same_faces():
    # Few queries and a batch go through different FAISS kernels: both must
    # visit the same lists and skip removed faces. Every face in the visited
    # lists is rescored, so ties among 4-bit scores cannot part them.
    rng = np.random.default_rng(4)
    vectors = unit(rng, 3000)
    index, master = rescored(vectors, np.arange(3000, dtype=np.int64))
    index.nprobe, index.spare = 3, len(vectors)  # some lists unvisited, so the kernels' list choice matters
    removed = np.arange(0, 3000, 7)
    index.remove_ids(removed)
    master.remove_ids(removed)
    queries = vectors[1 : 1 + 2 * BY_LIST_FROM] + 0.05 * unit(rng, 2 * BY_LIST_FROM)
    batch_scores, batch = index.search(queries, 10)
    assert index.codes.implem == 0  # FAISS's own choice for a batch
    alone = [index.search(q[None], 10) for q in queries]
    assert index.codes.implem == BY_QUERY
    assert (batch == np.concatenate([found for _, found in alone])).all()
    assert np.allclose(batch_scores, np.concatenate([scores for scores, _ in alone]), atol=1e-6)
    assert not np.isin(batch, removed).any()


@pytest.mark.parametrize("dim, m", [(512, 128), (128, 32), (100, 25), (30, 6), (7, 1)])
def test_one_code_per_four_dimensions_or_the_nearest_count_that_divides(dim, m):
    assert subquantizers(dim) == m
