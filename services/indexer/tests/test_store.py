import numpy as np
import pytest

from indexer.catalog import AlreadyExists, Catalog, NotFound, StoredFace
from indexer.registry import DimensionMismatch
from indexer.store import IndexStore

DIM = 8


def face(rng, face_id: str) -> StoredFace:
    v = rng.standard_normal(DIM).astype("<f4")
    return StoredFace(face_id, (v / np.linalg.norm(v)).astype("<f4").tobytes())


def query(f: StoredFace) -> np.ndarray:
    return np.frombuffer(f.vector, "<f4")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "catalog.sqlite3"


@pytest.fixture
def store(path):
    s = IndexStore(Catalog(path))
    s.catalog.put_collection("t", "c1", "one", b"{}", update=False)
    s.catalog.put_collection("t", "c2", "two", b"{}", update=False)
    yield s
    s.catalog.close()


def persons_found(store, f, collections=()):
    return [h.hit.person_id for h in store.search("t", list(collections), query(f)[None], 10, 0.99).hits[0]]


def test_collection_names_are_unique_per_tenant(store):
    with pytest.raises(AlreadyExists, match="a collection named 'one' already exists") as clash:
        store.catalog.put_collection("t", "c3", "one", b"{}", update=False)
    assert clash.value.reason == "collection_exists"
    store.catalog.put_collection("other-tenant", "c3", "one", b"{}", update=False)
    with pytest.raises(NotFound) as missing:
        store.catalog.put_collection("t", "nope", "x", b"{}", update=True)
    assert missing.value.reason == "unknown_collection"


def test_everything_acknowledged_survives_a_reopen(store, path):
    rng = np.random.default_rng(0)
    a, b = face(rng, "a1"), face(rng, "b1")
    store.put_person("t", "A", b'{"n":"A"}', False, [a], DIM, ["c1", "c2"])
    store.put_person("t", "B", b'{"n":"B"}', False, [b], DIM, ["c1"])
    store.delete_person("t", "B")
    store.catalog.close()

    reopened = IndexStore(Catalog(path))
    assert persons_found(reopened, a) == ["A"]
    assert persons_found(reopened, a, ["c2"]) == ["A"]
    assert persons_found(reopened, b) == []
    assert [r.id for r in reopened.catalog.get_persons("t", ["A", "B"])] == ["A"]
    assert reopened.catalog.get_persons("t", ["A"])[0].collections == ("c1", "c2")
    reopened.catalog.close()


def test_a_failed_write_leaves_nothing(store):
    rng = np.random.default_rng(1)
    with pytest.raises(NotFound, match="collection 'missing' does not exist") as missing:
        store.put_person("t", "A", b"{}", False, [face(rng, "a1")], DIM, ["c1", "missing"])
    assert missing.value.reason == "unknown_collection"
    assert store.catalog.get_persons("t", ["A"]) == []
    assert store.registry.get(("t", "c1")) is None or store.registry.get(("t", "c1")).faces == 0
    store.put_person("t", "A", b"{}", False, [face(rng, "a1")], DIM, ["c1"])
    wrong = StoredFace("x", np.ones(DIM * 2, "<f4").tobytes())
    with pytest.raises(DimensionMismatch):
        store.put_person("t", "B", b"{}", False, [wrong], DIM * 2, ["c1"])
    assert store.catalog.get_persons("t", ["B"]) == []


def test_replacing_faces_and_membership(store):
    rng = np.random.default_rng(2)
    old, new = face(rng, "old"), face(rng, "new")
    store.put_person("t", "A", b"{}", False, [old], DIM, ["c1"])
    store.put_person("t", "A", b'{"v":2}', True, [new], DIM, None)
    assert persons_found(store, old) == [] and persons_found(store, new) == ["A"]
    store.put_person("t", "A", b'{"v":3}', True, None, DIM, ["c2"])
    assert persons_found(store, new, ["c1"]) == [] and persons_found(store, new, ["c2"]) == ["A"]
    assert store.catalog.get_persons("t", ["A"])[0].data == b'{"v":3}'


def test_deleting_a_collection_keeps_its_persons(store):
    rng = np.random.default_rng(3)
    f = face(rng, "f")
    store.put_person("t", "A", b"{}", False, [f], DIM, ["c1", "c2"])
    assert store.delete_collection("t", "c1") == 1
    assert store.catalog.get_persons("t", ["A"])[0].collections == ("c2",)
    store.delete_collection("t", "c2")
    (person,) = store.catalog.get_persons("t", ["A"])
    assert person.collections == ()
    assert persons_found(store, f) == []
    with pytest.raises(NotFound):
        store.delete_collection("t", "c2")


def test_delete_from_one_collection_only(store):
    rng = np.random.default_rng(4)
    f = face(rng, "f")
    store.put_person("t", "A", b"{}", False, [f], DIM, ["c1", "c2"])
    assert store.delete_person("t", "A", "c1") == 1
    assert persons_found(store, f) == ["A"]
    with pytest.raises(NotFound, match="is not in collection"):
        store.delete_person("t", "A", "c1")


def test_listing_pages_in_creation_order_and_filters(store):
    rng = np.random.default_rng(5)
    for i in range(7):
        store.put_person("t", f"P{i}", b"{}", False, [face(rng, f"f{i}")], DIM, ["c1"] if i % 2 else ["c2"])
    page, total = store.catalog.list_persons("t", 2, 3)
    assert total == 7 and [r.id for r in page] == ["P2", "P3", "P4"]
    odd, total = store.catalog.list_persons("t", 0, 10, "c1")
    assert total == 3 and [r.id for r in odd] == ["P1", "P3", "P5"]
    with pytest.raises(NotFound):
        store.catalog.list_persons("t", 0, 10, "nope")
    assert store.catalog.list_persons("other", 0, 10) == ([], 0)


def test_search_refuses_unknown_collections_and_stays_in_the_tenant(store):
    rng = np.random.default_rng(6)
    f = face(rng, "f")
    store.catalog.put_collection("u", "c1", "one", b"{}", update=False)
    store.put_person("u", "U", b"{}", False, [f], DIM, ["c1"])
    assert persons_found(store, f) == []  # tenant t sees nothing of tenant u
    with pytest.raises(NotFound):
        store.search("t", ["zzz"], query(f)[None], 5, 0)


def test_a_deleted_persons_bytes_leave_the_file(path):
    catalog = Catalog(path)
    catalog.put_collection("t", "c", "c", b"{}", update=False)
    secret = b"THUMBNAIL-OF-A-DELETED-PERSON" * 50
    catalog.put_person("t", "A", secret, False, [StoredFace("f", np.ones(DIM, "<f4").tobytes())], ["c"])
    catalog.delete_person("t", "A")
    catalog._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.close()
    leftovers = [p for p in path.parent.iterdir() if secret[:29] in p.read_bytes()]
    assert leftovers == []


def test_a_replica_goes_with_its_last_membership_and_a_home_stays(store):
    rng = np.random.default_rng(3)
    home, copy = face(rng, "h1"), face(rng, "r1")
    store.put_person("t", "H", b"{}", False, [home], DIM, ["c1"])
    store.put_person("t", "R", b"{}", False, [copy], DIM, ["c1", "c2"], replica=True)
    assert [(r.id, r.replica) for r in store.catalog.get_persons("t", ["H", "R"])] == [("H", False), ("R", True)]
    # Lists without a collection show each person once: at its home.
    assert [r.id for r in store.catalog.list_persons("t", 0, 10)[0]] == ["H"]
    store.delete_person("t", "R", "c1")
    assert persons_found(store, copy, ["c2"]) == ["R"]
    store.delete_collection("t", "c2")
    assert store.catalog.get_persons("t", ["R"]) == []
    assert store.catalog.person_faces("t", "R") == []
    store.delete_person("t", "H", "c1")
    assert [r.id for r in store.catalog.get_persons("t", ["H"])] == ["H"]


def test_a_catalog_from_before_replicas_opens(path):
    import sqlite3

    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE persons (tenant TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (tenant, id)); INSERT INTO persons VALUES ('t', 'P', x'7b7d');"
    )
    old.commit()
    old.close()
    catalog = Catalog(path)
    assert [(r.id, r.replica) for r in catalog.get_persons("t", ["P"])] == [("P", False)]
    catalog.close()
