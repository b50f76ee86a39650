"""The shard's id maps (indexer/faces.py, numpy columns instead of Python
objects per face) against a plain dict model, through adds, replacements,
removals, re-adds and compactions, and the nprobe rule."""

import numpy as np
import pytest

from indexer import shard as shards
from indexer.columns import Column
from indexer.faces import FaceTable
from indexer.shard import AnnPolicy, Look, Shard


def unit(rng, n, dim=8):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_column_grows_keeps_and_widens_byte_strings():
    ids = Column("S1")
    ids.extend(np.array([b"a", b"b"]))
    ids.extend(np.array([b"longer-id"] * 3000))  # wider, and past the first capacity
    assert ids.size == 3002 and ids.values[0] == b"a" and ids.values[-1] == b"longer-id"
    ids.keep(np.arange(3002) % 2 == 0)
    assert ids.size == 1501 and ids.values[:2].tolist() == [b"a", b"longer-id"]


def test_the_table_answers_who_each_row_is_through_removals_and_compaction():
    table = FaceTable()
    fids = table.add(["a1", "b1", "a2"], ["A", "B", "A"], [3, 5, 3])
    assert fids.tolist() == [0, 1, 2] and (table.faces, table.persons) == (3, 2)
    assert sorted(table.rows_of_persons(["A"])) == [0, 2] and table.most_faces_of(["A", "B"]) == 2
    assert table.remove(table.rows_of_faces(["A"], ["a1"])).tolist() == [0]  # one face of A
    assert table.rows_of_persons(["A"]) == [2] and table.persons == 2
    assert table.remove(table.rows_of_persons(["B"])).tolist() == [1]  # B's last face: B is gone
    assert table.persons == 1 and table.rows_of_persons(["B"]) == []
    table.add(["c1"], ["C"], [7])  # reuses B's number
    kept = table.compact()
    assert kept.tolist() == [False, False, True, True] and (table.rows, table.dead) == (2, 0)
    assert table.rows_of_persons(["A"]) == [0] and table.rows_of_persons(["C"]) == [1]
    assert table.fids().tolist() == [2, 3]
    (hits,) = table.hits(np.array([[0.9, 0.5]], np.float32), np.array([[1, 0]]))
    assert [(h.person_id, h.face_id, h.version) for h in hits] == [("C", "c1", 7), ("A", "a2", 3)]


def test_the_shard_agrees_with_a_dict_model_through_random_writes(monkeypatch):
    """Random adds, replacements, removals and re-adds of the same persons,
    compacting every few removals: every search answers what a dict of
    face -> (person, vector) holds, and the master copy holds no more rows
    than faces plus the dead ones not yet compacted."""
    monkeypatch.setattr(shards, "COMPACT_AT", 7)
    rng = np.random.default_rng(0)
    shard = Shard(8)
    model: dict[str, tuple[str, np.ndarray]] = {}
    serial = 0
    for _ in range(300):
        person = f"p{rng.integers(40)}"
        if rng.random() < 0.35:
            removed = shard.remove_persons([person])
            assert removed == sum(p == person for p, _ in model.values())
            model = {f: pv for f, pv in model.items() if pv[0] != person}
        else:
            own = [f for f, (p, _) in model.items() if p == person]
            faces = [own[0]] if own and rng.random() < 0.3 else []  # a replacement
            faces += [f"f{serial + i}" for i in range(int(rng.integers(1, 4)))]
            serial += len(faces)
            vectors = unit(rng, len(faces))
            shard.add(faces, [person] * len(faces), vectors, [serial] * len(faces))
            model.update({f: (person, v) for f, v in zip(faces, vectors, strict=True)})
        assert (shard.faces, shard.persons) == (len(model), len({p for p, _ in model.values()}))
        assert shard.table.rows == shard.faces + shard.table.dead and shard.table.dead < 7
    faces = list(model)
    vectors = np.stack([model[f][1] for f in faces])
    probes = unit(rng, 10)
    scores = probes @ vectors.T
    want = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    for q, (row, hits) in enumerate(zip(want, shard.search(probes, 5), strict=True)):
        assert [h.face_id for h in hits] == [faces[i] for i in row]
        assert all(model[h.face_id][0] == h.person_id for h in hits)
        assert [h.score for h in hits] == pytest.approx(scores[q, row].tolist(), abs=1e-5)


def test_a_removed_person_added_again_is_found_with_its_new_faces_only(monkeypatch):
    monkeypatch.setattr(shards, "COMPACT_AT", 2)
    rng = np.random.default_rng(1)
    shard = Shard(8)
    old, new, other = unit(rng, 3)
    shard.add(["old"], ["P"], old[None], [1])
    shard.add(["x1", "x2"], ["X", "X"], np.stack([other, other]))
    shard.remove_persons(["P"])
    shard.add(["new"], ["P"], new[None], [2])
    shard.remove_persons(["X"])  # compacts: the rows move
    assert shard.table.dead == 0 and shard.table.rows == 1
    (hit,) = shard.search(old[None], 5)[0]
    assert (hit.person_id, hit.face_id, hit.version) == ("P", "new", 2)


def test_fast_searches_the_compacted_master_copy_by_id():
    """FAST rescores its candidates from the master copy, found by FAISS id
    after compaction has moved their rows."""
    rng = np.random.default_rng(2)
    shard = Shard(16, AnnPolicy(min_faces=500))
    vectors = unit(rng, 3000, 16)
    shard.add([f"f{i}" for i in range(3000)], [f"p{i}" for i in range(3000)], vectors)
    snapshot = shard.ann_snapshot()
    shard.install_ann(shard.device.build_ann(snapshot), snapshot)
    shard.remove_persons([f"p{i}" for i in range(0, 3000, 2)])  # compacts: half the rows go
    assert shard.table.rows < 3000
    hits = shard.search(vectors[1:40:2], 1, look=Look.FAST)
    assert [h[0].face_id for h in hits] == [f"f{i}" for i in range(1, 40, 2)]
    assert all(h[0].score == pytest.approx(1.0, abs=1e-5) for h in hits)


@pytest.mark.parametrize(
    "faces, visited",
    [(20_000, 57), (1_000_000, 400), (2_500_000, 633), (10_000_000, 1265)],
)
def test_fast_visits_a_share_of_the_lists_that_grows_with_the_shard(faces, visited):
    policy = AnnPolicy()
    lists = policy.lists_for(faces)
    assert policy.nprobe_for(lists) == visited
    assert visited / lists == pytest.approx(shards.VISITED, abs=0.01)


def test_a_fixed_nprobe_is_kept_but_never_beyond_the_lists():
    assert AnnPolicy(nprobe=384).nprobe_for(6325) == 384
    assert AnnPolicy(nprobe=384).nprobe_for(100) == 100
    assert AnnPolicy().nprobe_for(64) == shards.MIN_NPROBE


def test_a_second_look_visits_three_times_the_lists_and_at_most_all():
    lists = AnnPolicy().lists_for(2_500_000)
    assert AnnPolicy().second_nprobe_for(lists) == shards.SECOND_LOOK_LISTS * AnnPolicy().nprobe_for(lists) == 1899
    assert AnnPolicy(nprobe=384).second_nprobe_for(6325) == 1152
    assert AnnPolicy(nprobe=30).second_nprobe_for(64) == 64
