"""Search 1:N Crop end to end: real faces through Envoy (REST and gRPC),
the gateway, Triton, FAISS and Redis."""

from __future__ import annotations

import base64
import io
import re
import uuid
from datetime import UTC, datetime

import pytest
from PIL import Image

from devkit import lfw
from devkit.client import Rest, grpc_search, grpc_stub, parallel, scrape_all

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]

HEX24 = re.compile(r"^[0-9a-f]{24}$")
PERSON_KEYS = {
    "id",
    "name",
    "notes",
    "score",
    "gender",
    "thumbnails",
    "collections",
    "create_date",
    "nationality",
    "date_of_birth",
    "modified_date",
    # Verifik's resource names for id, create_date and modified_date.
    "_id",
    "createdAt",
    "updatedAt",
}


def _top_name(answer: dict, names: dict) -> str | None:
    return names.get(answer["data"][0]["id"]) if answer["data"] else None


def test_rest_search_finds_the_right_person_first(rest, gallery):
    probes = [(name, path) for name in lfw.identities() for path in lfw.photos(name)[1:]]

    def search(probe):
        name, path = probe
        response = rest.search([lfw.b64(lfw.crop(path))], collection_id=gallery["collection"])
        assert response.status_code == 200, response.text
        top = _top_name(response.json(), gallery["names"])
        return None if top is None else top == name

    tops = parallel(search, probes)
    answered = [t for t in tops if t is not None]
    rank1, precision = sum(answered) / len(tops), sum(answered) / len(answered)
    print(
        f"\nREST rank-1 on lfw-dev at min_score 0.5: {sum(answered)}/{len(tops)} = {rank1:.4f}, "
        f"precision {precision:.4f} ({len(gallery['names'])} enrolled, crops <= 120 px)"
    )
    assert len(tops) == 4 * len(lfw.identities())
    # Measured: 0.8675. Every probe is enrolled here, but a score assumes
    # half of them are strangers, so a weak right answer scores below 0.5 in
    # 300 faces and is not given (the pairwise score before gave 0.948).
    assert rank1 >= 0.84
    assert precision >= 0.98


def test_grpc_search_through_envoy_finds_the_right_person_first(stack, gallery):
    """16 in flight, more than the gateways' crop-embedder calls: searches
    share calls (crop_calls.py), and each is still answered its own face."""
    stub = grpc_stub(stack.grpc_target, stack.token())
    probes = [(name, lfw.photos(name)[1]) for name in lfw.identities()]

    def search(probe):
        name, path = probe
        answer = grpc_search(stub, [lfw.b64(lfw.crop(path))], collection_id=gallery["collection"])
        return bool(answer.data) and gallery["names"].get(answer.data[0].id) == name

    before = scrape_all(stack.gateways.metrics_ports)
    hits = parallel(search, probes, workers=16)
    after = scrape_all(stack.gateways.metrics_ports)
    calls, searches = (
        after[(f"facesearch_gateway_embedder_call_requests_{s}", ())]
        - before.get((f"facesearch_gateway_embedder_call_requests_{s}", ()), 0)
        for s in ("count", "sum")
    )
    print(f"\ngRPC rank-1 on lfw-dev at min_score 0.5: {sum(hits)}/{len(hits)}; crop-embedder calls {calls:.0f}")
    assert searches == len(probes) and calls < 0.8 * searches
    assert sum(hits) / len(hits) >= 0.84  # as through REST


def test_answer_has_verifik_shape(rest, gallery):
    name = lfw.identities()[7]
    probes = [lfw.b64(lfw.crop(p)) for p in lfw.photos(name)[1:3]]
    answer = rest.search(probes, min_score=0.5, collection_id=gallery["collection"], max_results=5).json()

    # Verifik's keys, and the faces searched, which a Verifik client ignores.
    assert set(answer) == {"id", "data", "signature", "faces_searched"}
    assert answer["faces_searched"] == len(gallery["names"])
    assert HEX24.match(answer["id"])
    assert answer["signature"]["message"] == "Certified by FaceSearch"
    # Verifik's way: "September 29, 2023 11:55 PM", UTC.
    signed = datetime.strptime(answer["signature"]["dateTime"], "%B %d, %Y %I:%M %p").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 120
    data = answer["data"]
    assert 1 <= len(data) <= 5
    assert gallery["names"][data[0]["id"]] == name
    scores = [p["score"] for p in data]
    assert scores == sorted(scores, reverse=True)
    assert all(0.5 <= s <= 1 for s in scores)
    assert len({p["id"] for p in data}) == len(data)
    top = data[0]
    assert set(top) == PERSON_KEYS
    assert (top["name"], top["gender"], top["nationality"], top["notes"], top["date_of_birth"]) == (
        name,
        "M",
        "US",
        "lfw-dev",
        "1960-01-02",
    )
    assert top["collections"] == [gallery["collection"]]
    datetime.fromisoformat(top["create_date"].replace("Z", "+00:00"))
    assert top["modified_date"] == top["create_date"]
    (thumb,) = top["thumbnails"]
    uuid.UUID(thumb["id"])
    assert Image.open(io.BytesIO(base64.b64decode(thumb["thumbnail"]))).format == "JPEG"


def test_min_score_filters_and_numeric_string_is_accepted(rest, gallery):
    probe = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[3])[2]))
    loose = rest.search([probe], min_score=0.5, collection_id=gallery["collection"], max_results=100).json()["data"]
    strict = rest.search([probe], min_score="0.99", collection_id=gallery["collection"], max_results=100).json()["data"]
    assert all(p["score"] >= 0.99 for p in strict)
    assert len(strict) <= len(loose)
    assert {p["id"] for p in strict} <= {p["id"] for p in loose}


def test_fast_and_accurate_score_a_face_alike(rest, gallery):
    probe = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[5])[1]))
    fast, accurate = (
        rest.search([probe], min_score=0.5, mode=mode, collection_id=gallery["collection"]).json()
        for mode in ("FAST", "ACCURATE")
    )
    assert fast["data"] and [(p["id"], p["score"]) for p in fast["data"]] == [
        (p["id"], p["score"]) for p in accurate["data"]
    ]
    assert fast["faces_searched"] == accurate["faces_searched"] == len(gallery["names"])


def test_max_results_default_and_limit(rest, gallery):
    probe = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[5])[1]))
    default = rest.search([probe], min_score=0.5, collection_id=gallery["collection"]).json()["data"]
    assert len(default) <= 10
    two = rest.search([probe], min_score=0.5, collection_id=gallery["collection"], max_results=2).json()["data"]
    assert len(two) <= 2
    assert [p["id"] for p in two] == [p["id"] for p in default[: len(two)]]


def test_data_uri_and_png_crops(rest, gallery):
    name = lfw.identities()[11]
    png = "data:image/png;base64," + lfw.b64(lfw.crop(lfw.photos(name)[1], side=100), fmt="PNG")
    answer = rest.search([png], collection_id=gallery["collection"]).json()
    assert gallery["names"][answer["data"][0]["id"]] == name


def test_without_collection_id_searches_all_of_the_callers_collections(stack, rest, gallery):
    # A tenant of its own: other modules enroll the same identity in the
    # shared tenant, which would make the top two a coin toss.
    own = Rest(stack.rest, stack.token("all-collections"))
    name = lfw.identities()[0]
    first, second = own.collection("first"), own.collection("second")
    own.enroll(name, lfw.photos(name)[0], [first])
    own.person("Second Copy", [lfw.b64(lfw.portrait(lfw.photos(name)[0]))], [second])
    answer = own.search([lfw.b64(lfw.crop(lfw.photos(name)[1]))], max_results=5).json()
    assert {p["name"] for p in answer["data"]} == {name, "Second Copy"}
    assert {c for p in answer["data"] for c in p["collections"]} == {first, second}
    # The shared tenant's gallery holds the same identity; this tenant never sees it.
    assert not {p["id"] for p in answer["data"]} & set(gallery["names"])
