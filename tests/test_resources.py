"""Collections and persons over REST (through Envoy) and gRPC: every route,
multi-face persons, real deletes, and Redis as a cache only."""

from __future__ import annotations

import uuid

import grpc
import pytest
import redis

from devkit import lfw
from devkit.client import Rest, grpc_stub
from facesearch.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from facesearch.v1 import facesearch_pb2 as pb

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
UNKNOWN = "0123456789abcdef01234567"


def face(person: int, photo: int) -> str:
    return lfw.b64(lfw.portrait(lfw.photos(lfw.identities()[person])[photo]))


def probe(person: int, photo: int) -> str:
    return lfw.b64(lfw.crop(lfw.photos(lfw.identities()[person])[photo]))


def top(rest, crop: str, collection: str = "", min_score: float = 0.5, **fields) -> list[dict]:
    body = {"collection_id": collection} if collection else {}
    response = rest.search([crop], min_score=min_score, **body, **fields)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def indexer_faces(stack, collection: str) -> int:
    """The faces the indexer holds for `collection`, once it reflects every
    acknowledged write: a search first, which the indexer answers only then."""
    Rest(stack.rest, stack.token()).search([probe(0, 1)], collection_id=collection)
    stub = indexer_pb2_grpc.IndexerStub(grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}"))
    return stub.ShardStats(indexer_pb2.Ref(tenant="default", id=collection), timeout=10).faces


def redis_client(stack) -> redis.Redis:
    return redis.Redis(port=stack.ports.redis)


def test_collection_lifecycle(rest):
    created = rest.ok("/collections", {"name": "lifecycle", "description": "first"})["data"]
    assert set(created) == {"id", "name", "description", "create_date", "modified_date"} | {
        "_id",
        "code",
        "createdAt",
        "updatedAt",
        "deleted",
    }
    assert (created["_id"], created["createdAt"], created["deleted"]) == (created["id"], created["create_date"], False)
    assert rest.ok(f"/collections/{created['code']}", method="GET")["data"] == created  # the code names it too
    got = rest.ok(f"/collections/{created['id']}", method="GET")["data"]
    assert got == created
    updated = rest.ok(f"/collections/{created['id']}", {"description": "second"}, method="PUT")["data"]
    assert (updated["name"], updated["description"]) == ("lifecycle", "second")
    assert updated["modified_date"] >= created["modified_date"]
    renamed = rest.ok(f"/collections/{created['id']}", {"name": "lifecycle-2"}, method="PUT")["data"]
    assert (renamed["name"], renamed["description"]) == ("lifecycle-2", "second")
    deleted = rest.ok(f"/collections/{created['id']}", method="DELETE")
    assert deleted["data"] == {**renamed, "deleted": True}  # Verifik's answer: the collection as it was
    response = rest.http.get(f"/collections/{created['id']}")
    assert response.status_code == 404 and response.json()["error"] == "unknown_collection"


def test_collections_are_listed_in_pages(rest):
    ids = [rest.collection(f"paged-{i}") for i in range(5)]
    everything = rest.ok("/collections", method="GET", limit=100)
    listed = [c["id"] for c in everything["data"]]
    assert listed.index(ids[0]) < listed.index(ids[4])
    total = everything["pagination"]["total"]
    first = rest.ok("/collections", method="GET", page=1, limit=2)
    assert first["pagination"] == {"page": 1, "limit": 2, "total": total, "pages": -(-total // 2)}
    second = rest.ok("/collections", method="GET", page=2, limit=2)
    assert len(first["data"]) == len(second["data"]) == 2
    assert {c["id"] for c in first["data"]}.isdisjoint(c["id"] for c in second["data"])
    beyond = rest.ok("/collections", method="GET", page=999, limit=2)
    assert beyond["data"] == [] and beyond["pagination"]["total"] == total


def test_a_person_with_three_faces_and_its_routes(rest):
    collection = rest.collection("three-faces")
    person = rest.person(
        "Three",
        [face(20, 0), face(20, 1), face(20, 2)],
        [collection],
        gender="F",
        date_of_birth="1971-05-06",
        nationality="CO",
        notes="vip",
    )
    assert len(person["id"]) == 24 and len(person["thumbnails"]) == 3
    assert len({t["id"] for t in person["thumbnails"]}) == 3
    assert rest.ok(f"/persons/{person['id']}", method="GET")["data"] == person
    assert [p["id"] for p in top(rest, probe(20, 3), collection)] == [person["id"]]
    assert top(rest, probe(20, 3), collection)[0]["thumbnails"] == person["thumbnails"]


def test_persons_are_listed_in_pages_and_by_collection(rest):
    a, b = rest.collection("list-a"), rest.collection("list-b")
    in_a = [rest.person(f"A{i}", [face(30 + i, 0)], [a])["id"] for i in range(5)]
    in_b = rest.person("B0", [face(40, 0)], [b])["id"]
    page1 = rest.ok("/persons", method="GET", collection=a, page=1, limit=2)
    page3 = rest.ok("/persons", method="GET", collection=a, page=3, limit=2)
    assert page1["pagination"] == {"page": 1, "limit": 2, "total": 5, "pages": 3}
    assert [p["id"] for p in page1["data"]] == in_a[:2]
    assert [p["id"] for p in page3["data"]] == in_a[4:]
    assert [p["id"] for p in rest.ok("/persons", method="GET", collection=b)["data"]] == [in_b]
    everyone = rest.ok("/persons", method="GET", limit=100)
    assert everyone["pagination"]["total"] >= 6 and len(everyone["data"]) <= 100


def test_update_replaces_faces_and_keeps_what_is_not_sent(rest, stack):
    collection = rest.collection("update")
    person = rest.person("Before", [face(50, 0)], [collection], notes="keep me")
    assert top(rest, probe(50, 1), collection)[0]["id"] == person["id"]

    # Partial update: details only; the face still matches.
    updated = rest.ok(f"/persons/{person['id']}", {"name": "After"}, method="PUT")["data"]
    assert (updated["name"], updated["notes"], updated["thumbnails"]) == ("After", "keep me", person["thumbnails"])

    # New images replace every face: the old person's photos no longer match, the new one's do.
    replaced = rest.ok(f"/persons/{person['id']}", {"images": [face(51, 0), face(51, 1)]}, method="PUT")["data"]
    assert len(replaced["thumbnails"]) == 2 and replaced["thumbnails"] != person["thumbnails"]
    assert indexer_faces(stack, collection) == 2
    assert [p["id"] for p in top(rest, probe(50, 2), collection, min_score=0.7)] == []
    found = top(rest, probe(51, 3), collection)
    assert [p["id"] for p in found] == [person["id"]] and found[0]["name"] == "After"


def test_delete_is_for_good(rest, stack):
    collection = rest.collection("delete")
    person = rest.person("Gone", [face(60, 0), face(60, 1)], [collection])
    assert top(rest, probe(60, 2), collection)[0]["id"] == person["id"]  # now cached in Redis
    assert redis_client(stack).exists(f"fs:default:person:{person['id']}")

    deleted = rest.ok(f"/persons/{person['id']}", method="DELETE")
    assert deleted["data"] == {"id": person["id"], "_id": person["id"], "deleted": True}
    assert top(rest, probe(60, 2), collection) == []
    assert top(rest, probe(60, 3)) == [] or top(rest, probe(60, 3))[0]["id"] != person["id"]
    assert indexer_faces(stack, collection) == 0
    # What Redis keeps of the person is a marker with the delete's version, no answer.
    marker = redis_client(stack).get(f"fs:default:person:{person['id']}")
    assert marker is None or (marker.decode().endswith("|") and marker.decode()[:-1].isdigit())
    response = rest.http.get(f"/persons/{person['id']}")
    assert (response.status_code, response.json()["error"]) == (404, "unknown_person")


def test_delete_from_one_collection_and_collection_delete_keeps_persons(rest):
    a, b = rest.collection("member-a"), rest.collection("member-b")
    person = rest.person("Both", [face(70, 0)], [a, b])
    assert [p["id"] for p in top(rest, probe(70, 1))].count(person["id"]) == 1  # once, though in two collections
    rest.ok(f"/persons/{person['id']}", method="DELETE", collection=a)
    assert top(rest, probe(70, 1), a) == []
    assert top(rest, probe(70, 1), b)[0]["id"] == person["id"]
    assert rest.ok(f"/persons/{person['id']}", method="GET")["data"]["collections"] == [b]

    rest.ok(f"/collections/{b}", method="DELETE")
    kept = rest.ok(f"/persons/{person['id']}", method="GET")["data"]
    assert kept["collections"] == [] and kept["name"] == "Both"
    response = rest.search([probe(70, 1)], collection_id=b)
    assert response.status_code == 404


def test_a_search_after_a_collection_delete_lists_what_is_left(rest):
    # Found by a search (so cached), then one of its collections deleted:
    # the next search lists the person in what is left, as GET does.
    a, b = rest.collection("left-a"), rest.collection("left-b")
    person = rest.person("Cached", [face(71, 0)], [a, b])
    assert top(rest, probe(71, 1), a)[0]["collections"] == [a, b]
    rest.ok(f"/collections/{b}", method="DELETE")
    assert top(rest, probe(71, 1), a)[0]["collections"] == [a]
    assert rest.ok(f"/persons/{person['id']}", method="GET")["data"]["collections"] == [a]


def test_several_probes_rank_at_least_as_well_as_one(rest, gallery):
    names = lfw.identities()
    ids = {v: k for k, v in gallery["names"].items()}

    def rank(name: str, photos: list[int]) -> int:
        crops = [lfw.b64(lfw.crop(lfw.photos(name)[i])) for i in photos]
        data = rest.search(crops, collection_id=gallery["collection"], max_results=100).json()["data"]
        order = [p["id"] for p in data]
        return order.index(ids[name]) if ids[name] in order else 100

    one = [rank(n, [1]) for n in names[:120]]
    three = [rank(n, [1, 2, 3]) for n in names[:120]]
    print(
        f"\nrank-1 with 1 probe: {sum(r == 0 for r in one)}/120, with 3 fused probes: {sum(r == 0 for r in three)}/120"
    )
    assert sum(r == 0 for r in three) >= sum(r == 0 for r in one)
    assert sum(three) <= sum(one)


def test_redis_is_only_a_cache(rest, stack):
    collection = rest.collection("cache")
    person = rest.person("Cached", [face(80, 0)], [collection], notes="n1")
    first = top(rest, probe(80, 1), collection)[0]

    redis_client(stack).flushall()
    assert top(rest, probe(80, 1), collection)[0] == first

    stack.restart("redis")
    stack.wait_healthy()
    assert top(rest, probe(80, 1), collection)[0] == first

    rest.ok(f"/persons/{person['id']}", {"notes": "n2"}, method="PUT")
    assert top(rest, probe(80, 1), collection)[0]["notes"] == "n2"  # not stale

    stack.stop_one("redis")  # no cache at all: answers still complete
    try:
        again = top(rest, probe(80, 1), collection)[0]
        assert again["notes"] == "n2" and again["thumbnails"] == first["thumbnails"]
    finally:
        stack.restart("redis")
        stack.wait_healthy()


def test_grpc_resource_routes(stack):
    stub = grpc_stub(stack.grpc_target, stack.token())
    collection = stub.CreateCollection(pb.CreateCollectionRequest(name="grpc-routes"), timeout=30).data
    assert stub.RetrieveCollection(pb.RetrieveCollectionRequest(id=collection.id), timeout=30).data == collection
    renamed = stub.UpdateCollection(pb.UpdateCollectionRequest(id=collection.id, description="d"), timeout=30).data
    assert (renamed.name, renamed.description) == ("grpc-routes", "d")
    listed = stub.ListCollections(pb.ListCollectionsRequest(limit=100), timeout=30)
    assert collection.id in [c.id for c in listed.data]
    person = stub.CreatePerson(
        pb.CreatePersonRequest(name="G", images=[face(90, 0)], collections=[collection.id]), timeout=60
    ).data
    assert stub.RetrievePerson(pb.RetrievePersonRequest(id=person.id), timeout=30).data.name == "G"
    listed = stub.ListPersons(pb.ListPersonsRequest(collection=collection.id), timeout=30)
    assert [p.id for p in listed.data] == [person.id] and listed.pagination.total == 1
    stub.UpdatePerson(pb.UpdatePersonRequest(id=person.id, notes="x"), timeout=30)
    stub.DeletePerson(pb.DeletePersonRequest(id=person.id), timeout=30)
    with pytest.raises(grpc.RpcError) as caught:
        stub.RetrievePerson(pb.RetrievePersonRequest(id=person.id), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateCollection(pb.CreateCollectionRequest(name="grpc-routes"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    stub.DeleteCollection(pb.DeleteCollectionRequest(id=collection.id), timeout=30)
    with pytest.raises(grpc.RpcError) as caught:
        stub.RetrieveCollection(pb.RetrieveCollectionRequest(id=collection.id), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


BAD = [
    ("GET", "/persons/xyz", None, {}, 400, "invalid_id", "id must be 24 hexadecimal characters, got 'xyz'"),
    ("GET", f"/persons/{UNKNOWN}", None, {}, 404, "unknown_person", f"person '{UNKNOWN}' does not exist"),
    ("PUT", f"/persons/{UNKNOWN}", {"notes": "x"}, {}, 404, "unknown_person", f"person '{UNKNOWN}' does not exist"),
    ("DELETE", f"/persons/{UNKNOWN}", None, {}, 404, "unknown_person", f"person '{UNKNOWN}' does not exist"),
    ("GET", f"/collections/{UNKNOWN}", None, {}, 404, "unknown_collection", f"collection '{UNKNOWN}' does not exist"),
    (
        "GET",
        "/collections/nope",
        None,
        {},
        400,
        "invalid_id",
        "id must be a collection id (24 hexadecimal characters) or code, got 'nope'",
    ),
    # A UUID that is no collection's code: a malformed id, not an unknown collection.
    ("GET", f"/collections/{uuid.uuid4()}", None, {}, 400, "invalid_id", None),
    (
        "PUT",
        f"/collections/{UNKNOWN}",
        {"name": "x"},
        {},
        404,
        "unknown_collection",
        f"collection '{UNKNOWN}' does not exist",
    ),
    (
        "DELETE",
        f"/collections/{UNKNOWN}",
        None,
        {},
        404,
        "unknown_collection",
        f"collection '{UNKNOWN}' does not exist",
    ),
    ("GET", "/persons", None, {"limit": 0}, 400, "invalid_limit", "limit must be between 1 and 100, got 0"),
    ("GET", "/persons", None, {"limit": 101}, 400, "invalid_limit", "limit must be between 1 and 100, got 101"),
    ("GET", "/collections", None, {"page": 0}, 400, "invalid_page", "page must be 1 or more, got 0"),
    (
        "GET",
        "/persons",
        None,
        {"collection": UNKNOWN},
        404,
        "unknown_collection",
        f"collection '{UNKNOWN}' does not exist",
    ),
    ("GET", "/persons", None, {"limit": "many"}, 400, "invalid_request", None),
    ("POST", "/collections", {"name": 5}, {}, 400, "invalid_request", None),
    ("POST", "/collections", {"name": "  "}, {}, 400, "missing_name", "name is required"),
    ("POST", "/persons", {"name": "x", "images": [{"a": 1}], "collections": []}, {}, 400, "invalid_request", None),
]


@pytest.mark.parametrize(
    "method,path,body,params,status,reason,message", BAD, ids=[f"{m} {p} {b or ''} {q or ''}" for m, p, b, q, *_ in BAD]
)
def test_bad_input_on_resource_routes(rest, method, path, body, params, status, reason, message):
    response = rest.http.request(method, path, json=body, params=params or None)
    got = response.json()
    assert (response.status_code, got["error"]) == (status, reason), got
    if message:
        assert got["message"] == message


def test_bad_images_on_create_and_update(rest, stack):
    collection = rest.collection("bad-images")
    kept = rest.person("Kept", [face(100, 0)], [collection])
    before = indexer_faces(stack, collection)
    two_people = lfw.b64(lfw.portrait(lfw.photos(lfw.identities()[0])[0]).resize((85, 85)).crop((0, 0, 85, 85)))
    side_by_side = lfw.b64(
        _side_by_side(
            lfw.portrait(lfw.photos(lfw.identities()[1])[0]), lfw.portrait(lfw.photos(lfw.identities()[2])[0])
        )
    )
    cases = [
        (
            "/persons",
            "POST",
            {"name": "x", "images": [face(101, 0)] * 4, "collections": [collection]},
            "images takes 1 to 3 images, got 4",
        ),
        (
            "/persons",
            "POST",
            {"name": "x", "images": [face(101, 0), side_by_side], "collections": [collection]},
            "images[1] shows more than one face; send images of one person only",
        ),
        (
            f"/persons/{kept['id']}",
            "PUT",
            {"images": [face(101, 0), face(101, 1), face(101, 2), face(101, 3)]},
            "images takes 1 to 3 images, got 4",
        ),
        (
            f"/persons/{kept['id']}",
            "PUT",
            {"collections": [collection, UNKNOWN]},
            f"collection '{UNKNOWN}' does not exist",
        ),
        (
            f"/persons/{kept['id']}",
            "PUT",
            {"collections": ["bad"]},
            "collections[0] must be a collection id (24 hexadecimal characters) or code, got 'bad'",
        ),
    ]
    for path, method, body, message in cases:
        response = rest.http.request(method, path, json=body)
        assert response.status_code in (400, 404) and response.json()["message"] == message, response.text
    assert two_people  # a small portrait still has one face: accepted below
    rest.person("Small", [two_people], [collection])
    assert indexer_faces(stack, collection) == before + 1
    assert rest.ok(f"/persons/{kept['id']}", method="GET")["data"] == kept


def _side_by_side(left, right):
    from PIL import Image

    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas
