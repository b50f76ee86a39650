"""Bad input over REST (through Envoy) and gRPC: the exact status and body,
and nothing stored is touched."""

from __future__ import annotations

import base64
import io

import grpc
import numpy as np
import pytest
from PIL import Image

from devkit import lfw
from devkit.client import grpc_search, grpc_stub
from facesearch.indexer.v1 import indexer_pb2, indexer_pb2_grpc
from facesearch.v1 import facesearch_pb2 as pb

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def png(width: int, height: int, value: int = 128) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def collection(rest) -> str:
    return rest.collection("bad-input")


@pytest.fixture(scope="module")
def face(collection) -> str:
    return lfw.b64(lfw.crop(lfw.photos(lfw.identities()[0])[1]))


def error(status: int, reason: str, message: str, code: str = "INVALID_ARGUMENT") -> tuple:
    return status, {"error": reason, "message": message, "code": code}


CASES = {
    "invalid base64": ({"images": ["not base64!"]}, error(400, "invalid_base64", "images[0] is not valid base64")),
    "bytes that are not an image": (
        {"images": [base64.b64encode(b"hello, this is text").decode()]},
        error(400, "invalid_image", "images[0] is not a readable image (JPEG, PNG, WebP, BMP...)"),
    ),
    "a 121x121 crop": (
        {"images": [png(121, 121)]},
        error(400, "crop_too_large", "images[0] is 121x121 pixels; a face crop must be at most 120x120"),
    ),
    "a 200x50 crop": (
        {"images": [png(200, 50)]},
        error(400, "crop_too_large", "images[0] is 200x50 pixels; a face crop must be at most 120x120"),
    ),
    "no images": ({"images": []}, error(400, "missing_images", "images is required: at least 1 base64 image")),
    "min_score missing": ({"min_score": None}, error(400, "missing_min_score", "min_score is required")),
    "min_score below range": (
        {"min_score": 0.4},
        error(400, "invalid_min_score", "min_score must be between 0.5 and 1, got 0.4"),
    ),
    "min_score above range": (
        {"min_score": "1.5"},
        error(400, "invalid_min_score", "min_score must be between 0.5 and 1, got 1.5"),
    ),
    "min_score not a number": (
        {"min_score": "high"},
        error(400, "invalid_min_score", "min_score must be a number, got 'high'"),
    ),
    "min_score NaN": (
        {"min_score": "NaN"},
        error(400, "invalid_min_score", "min_score must be between 0.5 and 1, got nan"),
    ),
    "min_score a list": (
        {"min_score": [0.7]},
        error(400, "invalid_min_score", "min_score must be a number, got a list"),
    ),
    "unknown search_mode": (
        {"search_mode": "SLOW"},
        error(400, "invalid_search_mode", "search_mode must be FAST or ACCURATE, got 'SLOW'"),
    ),
    "search_mode missing": (
        {"search_mode": None},
        error(400, "missing_search_mode", "search_mode is required: FAST or ACCURATE"),
    ),
    "max_results 0": (
        {"max_results": 0},
        error(400, "invalid_max_results", "max_results must be between 1 and 100, got 0"),
    ),
    "max_results 101": (
        {"max_results": 101},
        error(400, "invalid_max_results", "max_results must be between 1 and 100, got 101"),
    ),
    "max_results not a number": (
        {"max_results": "ten"},
        error(400, "invalid_request", 'max_results: invalid value "ten" for type TYPE_INT32'),
    ),
    "unknown collection": (
        {"collection_id": "0123456789abcdef01234567"},
        error(404, "unknown_collection", "collection '0123456789abcdef01234567' does not exist", "NOT_FOUND"),
    ),
    "a crop without a face": ({"images": [png(100, 100)]}, error(400, "no_face", "no face found in images[0]")),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_search_crops_rejects(rest, collection, face, case):
    change, (status, body) = CASES[case]
    request = {"images": [face], "min_score": 0.7, "search_mode": "FAST", "collection_id": collection}
    request.update(change)
    request = {k: v for k, v in request.items() if v is not None}
    response = rest.post("/search/crops", request)
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"


def test_second_image_is_named(rest, collection, face):
    response = rest.post(
        "/search/crops", {"images": [face, "%%%"], "min_score": 0.7, "search_mode": "FAST", "collection_id": collection}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "images[1] is not valid base64"


def test_grpc_gets_status_reason_and_message(stack, collection):
    stub = grpc_stub(stack.grpc_target, stack.token())
    with pytest.raises(grpc.RpcError) as caught:
        grpc_search(stub, [png(121, 121)], collection_id=collection)
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "images[0] is 121x121 pixels; a face crop must be at most 120x120"
    assert ("facesearch-error", "crop_too_large") in err.trailing_metadata()
    with pytest.raises(grpc.RpcError) as caught:
        stub.SearchCrops(pb.SearchCropsRequest(images=["x"], search_mode="FAST"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "min_score is required"


def test_unknown_route_and_malformed_json(rest):
    response = rest.http.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    response = rest.http.post("/search/crops", content=b'{"images": [', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def shard_faces(stack, collection: str) -> int:
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports.indexer}")
    stats = indexer_pb2_grpc.IndexerStub(channel).ShardStats(
        indexer_pb2.Ref(tenant="default", id=collection), timeout=10
    )
    return stats.faces


def test_failed_enrollment_stores_nothing(stack, rest, collection):
    name = lfw.identities()[1]
    good = lfw.b64(lfw.portrait(lfw.photos(name)[0]))
    rest.person("Kept", [good], [collection])
    before = shard_faces(stack, collection)

    cases = [
        ({"images": [good, png(100, 100)]}, 400, "no face found in images[1]"),
        ({"images": [good, "***"]}, 400, "images[1] is not valid base64"),
        ({"images": [good] * 4}, 400, "images takes 1 to 3 images, got 4"),
        ({"images": []}, 400, "images is required: at least 1 base64 image"),
        ({"name": ""}, 400, "name is required"),
        ({"collections": ["0123456789abcdef01234567"]}, 404, "collection '0123456789abcdef01234567' does not exist"),
        ({"gender": "X"}, 400, "gender must be M or F, got 'X'"),
        ({"date_of_birth": "31/12/1990"}, 400, "date_of_birth must be an ISO date (YYYY-MM-DD), got '31/12/1990'"),
    ]
    for change, status, message in cases:
        body = {"name": "Never Stored", "images": [good], "collections": [collection], **change}
        response = rest.post("/persons", body)
        assert (response.status_code, response.json()["message"]) == (status, message), change

    assert shard_faces(stack, collection) == before
    answer = rest.search([lfw.b64(lfw.crop(lfw.photos(name)[1]))], collection_id=collection).json()
    assert [p["name"] for p in answer["data"]] == ["Kept"]


def test_duplicate_collection_name(rest):
    rest.collection("unique-name")
    response = rest.post("/collections", {"name": "unique-name"})
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["code"]) == ("collection_exists", "ALREADY_EXISTS")
