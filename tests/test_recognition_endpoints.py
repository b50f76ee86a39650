"""Full-image search, detect, compare and verify through Envoy's REST API,
on real lfw-dev photos (whole 250x250 LFW images, not crops)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from devkit import lfw

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def photo(identity: int, n: int) -> str:
    """The whole LFW photo, as a client would send it."""
    path = lfw.photos(lfw.identities()[identity])[n]
    return base64.b64encode(path.read_bytes()).decode()


def blank() -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(buf, format="JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def test_full_image_search_finds_the_person(rest, gallery):
    ids = {name: pid for pid, name in gallery["names"].items()}
    hits = 0
    for identity in range(20):
        response = rest.post(
            "/search",
            {
                "images": [photo(identity, 1)],
                "min_score": 0.2,
                "search_mode": "ACCURATE",
                "collection_id": gallery["collection"],
            },
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        hits += bool(data) and data[0]["id"] == ids[lfw.identities()[identity]]
        assert all(0.2 <= p["score"] <= 1 for p in data)
    assert hits >= 16, hits  # measured 17: weak right answers score below 0.2 in 300 faces


def test_full_image_search_checks_its_input(rest, gallery):
    body = {"images": [photo(0, 1), blank()], "min_score": 0.5, "search_mode": "FAST"}
    response = rest.post("/search", body)
    assert (response.status_code, response.json()["error"], response.json()["message"]) == (
        400,
        "no_face",
        "no face found in images[1]",
    )
    response = rest.post("/search", {**body, "images": [photo(0, 1)], "min_score": 0.1})
    assert response.json()["message"] == "min_score must be between 0.2 and 1, got 0.1"
    response = rest.post("/search", {**body, "images": [photo(0, 1)] * 4})
    assert response.json()["error"] == "too_many_images"


def test_detect_answers_boxes_confidence_and_landmarks(rest):
    response = rest.post("/detect", {"image": photo(5, 0)})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["face_count"] == len(data["faces"]) >= 1
    face = data["faces"][0]
    box = face["bounding_box"]
    assert 0.9 <= face["confidence"] <= 1
    assert box["width"] > 40 and box["height"] > 40  # LFW faces fill the middle of 250x250
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"):
        point = face["landmarks"][name]
        assert box["x"] <= point["x"] <= box["x"] + box["width"], name
        assert box["y"] <= point["y"] <= box["y"] + box["height"], name
    assert face["landmarks"]["left_eye"]["x"] < face["landmarks"]["right_eye"]["x"]
    empty = rest.post("/detect", {"image": blank()}).json()["data"]
    assert empty == {"faces": [], "face_count": 0}


def test_compare_matches_the_same_person_only(rest):
    same = rest.ok("/compare", {"probe": [photo(10, 0)], "gallery": [photo(10, 1), photo(10, 2)]})["data"]
    other = rest.ok("/compare", {"probe": [photo(10, 0)], "gallery": [photo(11, 0)], "compare_min_score": 0.7})["data"]
    assert same["match"] and same["score"] >= 0.8 and same["compare_min_score"] == 0.8
    assert not other["match"] and other["score"] < same["score"] and other["compare_min_score"] == 0.7
    missing = rest.post("/compare", {"probe": [photo(10, 0)], "gallery": []})
    assert (missing.status_code, missing.json()["message"]) == (400, "gallery is required: at least 1 base64 image")


def test_verify_against_an_enrolled_person(rest, gallery):
    ids = {name: pid for pid, name in gallery["names"].items()}
    person = ids[lfw.identities()[20]]
    yes = rest.ok("/verify", {"id": person, "images": [photo(20, 2)]})["data"]
    assert yes["match"] and yes["person"]["id"] == person and yes["min_score"] == 0.8
    no = rest.ok("/verify", {"id": person, "images": [photo(21, 0)], "min_score": 0.5})["data"]
    assert not no["match"] and no["score"] < yes["score"]
    unknown = rest.post("/verify", {"id": "00" + "cd" * 11, "images": [photo(20, 2)]})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_person")
