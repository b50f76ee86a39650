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
    (hits,) = registry.search([("t", "c1"), ("t", "c2")], target[None], top_k=5, min_score=-1)
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
    (hits,) = registry.search([("tenant-a", "c")], v[:1], top_k=10, min_score=0.5)
    assert [h.hit.person_id for h in hits] == ["A", "B"]  # equal scores: by person id
    assert registry.search([("tenant-a", "c")], v[1:2], top_k=10, min_score=0.5) == [[]]
    assert registry.search([("tenant-a", "missing")], v[:1], top_k=10, min_score=0) == [[]]


def test_dimension_mismatch_is_refused():
    registry = Registry()
    registry.writable(("t", "c"), 4)
    with pytest.raises(DimensionMismatch):
        registry.writable(("t", "c"), 8)


def clustered(rng, persons: int, per_person: int, dim: int = 32, noise: float = 0.35):
    """Face-like data: each identity a centre, its faces noisy copies of it."""
    centres = unit(rng, persons, dim)
    faces = np.repeat(centres, per_person, axis=0) + noise * rng.standard_normal((persons * per_person, dim)) / np.sqrt(dim)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return centres, faces.astype(np.float32)


def build_now(shard: Shard) -> None:
    from indexer.shard import build_ann

    shard.install_ann(build_ann(shard.ann_snapshot()))


def test_fast_agrees_with_exact_on_face_like_data():
    from indexer.shard import AnnPolicy

    rng = np.random.default_rng(7)
    centres, faces = clustered(rng, 2000, 3)
    shard = Shard(32, AnnPolicy(min_faces=1000, nprobe=16))
    shard.add([f"f{i}" for i in range(len(faces))], [f"p{i // 3}" for i in range(len(faces))], faces)
    assert shard.wants_ann()
    build_now(shard)
    assert shard.ann is not None and not shard.wants_ann()
    probes = centres + 0.35 * rng.standard_normal(centres.shape) / np.sqrt(32)
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    exact = [h[0].person_id for h in shard.search(probes, 1)]
    fast = [h[0].person_id for h in shard.search(probes, 1, fast=True)]
    agreement = np.mean([a == b for a, b in zip(exact, fast)])
    assert agreement >= 0.99


def test_writes_during_a_build_reach_the_new_index_and_deletes_are_real():
    from indexer.shard import AnnPolicy, build_ann

    rng = np.random.default_rng(8)
    _, faces = clustered(rng, 500, 2)
    shard = Shard(32, AnnPolicy(min_faces=100, nprobe=64))
    shard.add([f"f{i}" for i in range(1000)], [f"p{i // 2}" for i in range(1000)], faces)
    snapshot = shard.ann_snapshot()          # the build starts...
    late = unit(rng, 1, 32)
    shard.add(["late"], ["LATE"], late)       # ...writes keep coming
    shard.remove_persons(["p0"])
    shard.install_ann(build_ann(snapshot))    # ...and are replayed on install
    assert shard.search(late, 1, fast=True)[0][0].person_id == "LATE"
    assert all(h.person_id != "p0" for h in shard.search(faces[:2], 5, fast=True)[0])
    shard.remove_persons(["LATE"])            # after install: both indexes
    assert all(h.person_id != "LATE" for h in shard.search(late, 5, fast=True)[0])
    assert shard.ann.ntotal == shard.faces


def test_fast_is_exact_until_the_shard_is_large():
    rng = np.random.default_rng(9)
    shard = Shard(16)
    shard.add(["a"], ["A"], unit(rng, 1))
    assert not shard.wants_ann() and shard.ann is None
    assert shard.search(unit(rng, 1), 1, fast=True)[0][0].person_id == "A"
