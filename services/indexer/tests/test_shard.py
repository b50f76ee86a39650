import numpy as np
import pytest

from indexer import device as devices
from indexer.registry import DimensionMismatch, Matches, Query, Registry
from indexer.shard import AnnPolicy, Look, Shard

# Every shard test runs on the CPU path, on the GPU path's logic with its
# replicas in host memory, and (on a machine with a GPU and faiss-gpu,
# `make test-gpu`) on the GPU itself.
GPU = pytest.param("cuda:0", marks=pytest.mark.gpu)


def make(name: str) -> devices.Device:
    if name == "replicated":
        return devices.Replicated()
    chosen = devices.choose(name)
    assert chosen.name == name
    return chosen


@pytest.fixture(params=["cpu", "replicated", GPU])
def device(request) -> devices.Device:
    return make(request.param)


@pytest.fixture(params=["replicated", GPU])
def replicated(request) -> devices.Replicated:
    return make(request.param)


def unit(rng, n, dim=16):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_matches_brute_force(device):
    rng = np.random.default_rng(0)
    vectors = unit(rng, 500)
    shard = Shard(16, device=device)
    shard.add([f"f{i}" for i in range(500)], [f"p{i}" for i in range(500)], vectors)
    queries = unit(rng, 5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    for row, hits in zip(expected, shard.search(queries, 10), strict=True):
        assert [h.face_id for h in hits] == [f"f{i}" for i in row]


def test_remove_persons_removes_all_their_faces_for_good(device):
    rng = np.random.default_rng(1)
    shard = Shard(16, device=device)
    v = unit(rng, 4)
    shard.add(["a1", "a2", "b1", "c1"], ["A", "A", "B", "C"], v)
    assert (shard.faces, shard.persons) == (4, 3)
    assert shard.remove_persons(["A", "nobody"]) == 2
    assert (shard.faces, shard.persons) == (2, 2)
    found = {h.person_id for hits in shard.search(v, 4) for h in hits}
    assert found == {"B", "C"}
    assert shard.remove_persons(["A"]) == 0


def test_adding_an_existing_face_id_replaces_it(device):
    rng = np.random.default_rng(2)
    shard = Shard(16, device=device)
    old, new = unit(rng, 2)
    shard.add(["f"], ["P"], old[None])
    shard.add(["f"], ["P"], new[None])
    assert shard.faces == 1
    (hit,) = shard.search(new[None], 1)[0]
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_registry_answers_one_hit_per_person_across_shards(device):
    rng = np.random.default_rng(3)
    registry = Registry(device=device)
    target = unit(rng, 1)[0]
    near = target + 0.05 * unit(rng, 1)[0]
    near /= np.linalg.norm(near)
    others = unit(rng, 30)
    registry.writable(("t", "c1"), 16).add(["x1", "x2"], ["X", "X"], np.stack([target, near]))
    registry.writable(("t", "c2"), 16).add(
        ["x3"] + [f"o{i}" for i in range(30)], ["X"] + [f"O{i}" for i in range(30)], np.vstack([near[None], others])
    )
    found = registry.search(Query("t", ("c1", "c2"), 5, -1), target[None])
    (hits,) = found.hits
    assert found.faces == 2 + 31  # both shards, whole
    persons = [h.hit.person_id for h in hits]
    assert persons[0] == "X" and persons.count("X") == 1 and len(persons) == 5
    assert hits[0].collection_id == "c1" and hits[0].hit.face_id == "x1"
    scores = [h.hit.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_registry_min_score_ties_and_isolation(device):
    registry = Registry(device=device)
    v = np.eye(4, dtype=np.float32)
    registry.writable(("tenant-a", "c"), 4).add(["1", "2"], ["B", "A"], np.stack([v[0], v[0]]))
    registry.writable(("tenant-b", "c"), 4).add(["3"], ["Z"], v[0][None])
    (hits,) = registry.search(Query("tenant-a", ("c",), 10, 0.5), v[:1]).hits
    assert [h.hit.person_id for h in hits] == ["A", "B"]  # equal scores: by person id
    assert registry.search(Query("tenant-a", ("c",), 10, 0.5), v[1:2]) == Matches([[]], 2)
    assert registry.search(Query("tenant-a", ("missing",), 10, 0), v[:1]) == Matches([[]], 0)


def test_dimension_mismatch_is_refused(device):
    registry = Registry(device=device)
    registry.writable(("t", "c"), 4)
    with pytest.raises(DimensionMismatch):
        registry.writable(("t", "c"), 8)


def clustered(rng, persons: int, per_person: int, dim: int = 32, noise: float = 0.35):
    """Face-like data: each identity a centre, its faces noisy copies of it."""
    centres = unit(rng, persons, dim)
    faces = np.repeat(centres, per_person, axis=0) + noise * rng.standard_normal((persons * per_person, dim)) / np.sqrt(
        dim
    )
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return centres, faces.astype(np.float32)


def build_now(shard: Shard) -> None:
    snapshot = shard.ann_snapshot()
    shard.install_ann(shard.device.build_ann(snapshot), snapshot)


def test_fast_agrees_with_exact_on_face_like_data(device):
    rng = np.random.default_rng(7)
    centres, faces = clustered(rng, 2000, 3)
    shard = Shard(32, AnnPolicy(min_faces=1000, nprobe=16), device)
    shard.add([f"f{i}" for i in range(len(faces))], [f"p{i // 3}" for i in range(len(faces))], faces)
    assert shard.wants_ann()
    build_now(shard)
    assert shard.ann is not None and not shard.wants_ann()
    probes = centres + 0.35 * rng.standard_normal(centres.shape) / np.sqrt(32)
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    exact = [h[0].person_id for h in shard.search(probes, 1)]
    fast = [h[0].person_id for h in shard.search(probes, 1, look=Look.FAST)]
    agreement = np.mean([a == b for a, b in zip(exact, fast, strict=True)])
    assert agreement >= 0.99


def test_a_second_look_visits_more_lists_and_finds_what_fast_lost(device):
    rng = np.random.default_rng(11)
    _, faces = clustered(rng, 1500, 2)
    # One list of 219 a look: FAST loses the best face of most far probes;
    # the second look's three lists lose fewer.
    shard = Shard(32, AnnPolicy(min_faces=1000, nprobe=1), device)
    shard.add([f"f{i}" for i in range(len(faces))], [f"p{i // 2}" for i in range(len(faces))], faces)
    assert not shard.approximate(Look.FAST)
    build_now(shard)
    assert shard.approximate(Look.FAST) and shard.approximate(Look.SECOND) and not shard.approximate(Look.EXACT)
    assert (shard.ann.nprobe, shard.ann.second_nprobe) == (1, 3)
    probes = unit(rng, 300, 32)
    exact = [h[0].face_id for h in shard.search(probes, 1)]
    fast = [h[0].face_id for h in shard.search(probes, 1, look=Look.FAST)]
    second = [h[0].face_id for h in shard.search(probes, 1, look=Look.SECOND)]
    found = [sum(a == b for a, b in zip(exact, answer, strict=True)) for answer in (fast, second)]
    assert found[0] < found[1] < len(probes), found
    assert shard.ann.nprobe == 1  # the second look leaves FAST's own setting alone
    assert [h[0].face_id for h in shard.search(probes, 1, look=Look.FAST)] == fast


def test_writes_during_a_build_reach_the_new_index_and_deletes_are_real(device):
    rng = np.random.default_rng(8)
    _, faces = clustered(rng, 500, 2)
    shard = Shard(32, AnnPolicy(min_faces=100, nprobe=64), device)
    shard.add([f"f{i}" for i in range(1000)], [f"p{i // 2}" for i in range(1000)], faces)
    snapshot = shard.ann_snapshot()  # the build starts...
    late = unit(rng, 1, 32)
    shard.add(["late"], ["LATE"], late)  # ...writes keep coming
    shard.remove_persons(["p0"])
    shard.install_ann(shard.device.build_ann(snapshot), snapshot)  # ...replayed on install
    assert shard.search(late, 1, look=Look.FAST)[0][0].person_id == "LATE"
    assert all(h.person_id != "p0" for h in shard.search(faces[:2], 5, look=Look.FAST)[0])
    shard.remove_persons(["LATE"])  # after install: both indexes
    assert all(h.person_id != "LATE" for h in shard.search(late, 5, look=Look.FAST)[0])
    assert shard.ann.ntotal == shard.faces


def test_fast_is_exact_until_the_shard_is_large(device):
    rng = np.random.default_rng(9)
    shard = Shard(16, device=device)
    shard.add(["a"], ["A"], unit(rng, 1))
    assert not shard.wants_ann() and shard.ann is None
    assert shard.search(unit(rng, 1), 1, look=Look.FAST)[0][0].person_id == "A"


def test_gpu_replicas_compact_before_dead_rows_outgrow_a_search(replicated):
    device = replicated
    device.max_k, device.removal_slack = 16, 8  # small, to reach compaction quickly
    rng = np.random.default_rng(10)
    vectors = unit(rng, 100)
    shard = Shard(16, device=device)
    shard.add([f"f{i}" for i in range(100)], [f"p{i}" for i in range(100)], vectors)
    replica = shard.exact
    shard.remove_persons([f"p{i}" for i in range(7)])
    assert shard.exact is replica and replica.dead == 7 and replica.ntotal == 93

    def expected(k):
        live = np.arange(7, 100)
        order = np.argsort(-(vectors[:3] @ vectors[live].T), axis=1)[:, :k]
        return [[f"f{live[i]}" for i in row] for row in order]

    # k + dead rows within the limit: the replica answers, without the dead rows.
    assert [[h.face_id for h in hits] for hits in shard.search(vectors[:3], 5)] == expected(5)
    # Beyond it: the master copy answers, the same.
    assert not replica.can_search(10)
    assert [[h.face_id for h in hits] for hits in shard.search(vectors[:3], 10)] == expected(10)
    shard.remove_persons(["p7"])  # the 8th dead row: a fresh replica
    assert shard.exact is not replica and (shard.exact.dead, shard.exact.ntotal) == (0, 92)
    assert {h.person_id for hits in shard.search(vectors[:8], 3) for h in hits}.isdisjoint({f"p{i}" for i in range(8)})


def test_gpu_approximate_index_is_rebuilt_before_its_dead_rows_outgrow_a_search(replicated):
    device = replicated
    device.max_k, device.removal_slack = 64, 32
    rng = np.random.default_rng(11)
    _, faces = clustered(rng, 300, 2)
    shard = Shard(32, AnnPolicy(min_faces=100, nprobe=64), device)
    shard.add([f"f{i}" for i in range(600)], [f"p{i // 2}" for i in range(600)], faces)
    build_now(shard)
    shard.remove_persons([f"p{i}" for i in range(15)])  # 30 dead rows
    assert shard.ann.dead == 30 and not shard.wants_ann()
    assert all(
        h.person_id not in {f"p{i}" for i in range(15)}
        for hits in shard.search(faces[:30], 10, look=Look.FAST)
        for h in hits
    )
    shard.remove_persons(["p15"])  # 32: time to rebuild
    assert shard.wants_ann()
    build_now(shard)
    assert shard.ann.dead == 0 and shard.ann.ntotal == shard.faces == 568


def test_search_goes_just_deep_enough_for_top_k_persons_with_several_faces(device):
    """Three persons of four faces each, all closer to the probe than anyone
    else: every top_k still names top_k persons, each by its best face
    (top_k 1 searches with k = 1)."""
    rng = np.random.default_rng(3)
    registry = Registry(device=device)
    probe = unit(rng, 1, 32)
    near = probe + 0.05 * rng.standard_normal((12, 32)).astype(np.float32)
    vectors = np.concatenate([near / np.linalg.norm(near, axis=1, keepdims=True), unit(rng, 200, 32)])
    persons = [f"near{i // 4}" for i in range(12)] + [f"far{i}" for i in range(200)]
    registry.writable(("t", "c"), 32).add([f"f{i}" for i in range(212)], persons, vectors)
    best: dict[str, float] = {}
    for person, score in zip(persons, (vectors @ probe[0]).tolist(), strict=True):
        best[person] = max(best.get(person, -1.0), score)
    expected = sorted(best, key=lambda p: -best[p])
    for top_k in (1, 2, 3, 5):
        (hits,) = registry.search(Query("t", ("c",), top_k, -1), probe).hits
        assert [h.hit.person_id for h in hits] == expected[:top_k]
        assert [h.hit.score for h in hits] == pytest.approx([best[p] for p in expected[:top_k]], abs=1e-5)
