import numpy as np
import pytest

from indexer.registry import DimensionMismatch, Registry
from indexer.shard import Shard


def unit(rng, n, dim=16):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    vectors = unit(rng, 500)
    shard = Shard(16)
    shard.add([f"f{i}" for i in range(500)], [f"p{i}" for i in range(500)], vectors)
    queries = unit(rng, 5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    for row, hits in zip(expected, shard.search(queries, 10)):
        assert [h.face_id for h in hits] == [f"f{i}" for i in row]


def test_remove_persons_removes_all_their_faces_for_good():
    rng = np.random.default_rng(1)
    shard = Shard(16)
    v = unit(rng, 4)
    shard.add(["a1", "a2", "b1", "c1"], ["A", "A", "B", "C"], v)
    assert (shard.faces, shard.persons) == (4, 3)
    assert shard.remove_persons(["A", "nobody"]) == 2
    assert (shard.faces, shard.persons) == (2, 2)
    found = {h.person_id for hits in shard.search(v, 4) for h in hits}
    assert found == {"B", "C"}
    assert shard.remove_persons(["A"]) == 0


def test_adding_an_existing_face_id_replaces_it():
    rng = np.random.default_rng(2)
    shard = Shard(16)
    old, new = unit(rng, 2)
    shard.add(["f"], ["P"], old[None])
    shard.add(["f"], ["P"], new[None])
    assert shard.faces == 1
    (hit,) = shard.search(new[None], 1)[0]
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_registry_answers_one_hit_per_person_across_shards():
    rng = np.random.default_rng(3)
    registry = Registry()
    target = unit(rng, 1)[0]
    near = target + 0.05 * unit(rng, 1)[0]
    near /= np.linalg.norm(near)
    others = unit(rng, 30)
    registry.writable(("t", "c1"), 16).add(["x1", "x2"], ["X", "X"], np.stack([target, near]))
    registry.writable(("t", "c2"), 16).add(["x3"] + [f"o{i}" for i in range(30)], ["X"] + [f"O{i}" for i in range(30)],
                                           np.vstack([near[None], others]))
    hits = registry.search([("t", "c1"), ("t", "c2")], target, top_k=5, min_score=-1)
    persons = [h.hit.person_id for h in hits]
    assert persons[0] == "X" and persons.count("X") == 1 and len(persons) == 5
    assert hits[0].collection_id == "c1" and hits[0].hit.face_id == "x1"
    scores = [h.hit.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_registry_min_score_ties_and_isolation():
    registry = Registry()
    v = np.eye(4, dtype=np.float32)
    registry.writable(("tenant-a", "c"), 4).add(["1", "2"], ["B", "A"], np.stack([v[0], v[0]]))
    registry.writable(("tenant-b", "c"), 4).add(["3"], ["Z"], v[0][None])
    hits = registry.search([("tenant-a", "c")], v[0], top_k=10, min_score=0.5)
    assert [h.hit.person_id for h in hits] == ["A", "B"]  # equal scores: by person id
    assert registry.search([("tenant-a", "c")], v[1], top_k=10, min_score=0.5) == []
    assert registry.search([("tenant-a", "missing")], v[0], top_k=10, min_score=0) == []


def test_dimension_mismatch_is_refused():
    registry = Registry()
    registry.writable(("t", "c"), 4)
    with pytest.raises(DimensionMismatch):
        registry.writable(("t", "c"), 8)
