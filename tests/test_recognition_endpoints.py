"""Full-image search, detect, compare and verify through Envoy's REST API,
on real lfw-dev photos (whole 250x250 LFW images, not crops)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from devkit import lfw
from facesearch_common import triton

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


def test_detect_answers_boxes_scores_landmarks_and_thumbnails(rest):
    response = rest.post("/detect", {"image": photo(5, 0)})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) >= 1
    face = data[0]
    box, fractional = face["box"], face["bounding_box"]
    assert 0.9 <= face["detection_score"] == face["confidence"] <= 1
    assert box["right"] - box["left"] > 40 and box["bottom"] - box["top"] > 40  # LFW faces fill the middle
    assert (
        abs(fractional["x"] - box["left"]) <= 0.5 and abs(fractional["x"] + fractional["width"] - box["right"]) <= 0.5
    )
    for name in ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth"):
        x, y = face["landmarks"][name]
        assert box["left"] <= x <= box["right"] and box["top"] <= y <= box["bottom"], name
    assert face["landmarks"]["left_eye"][0] < face["landmarks"]["right_eye"][0]
    thumbnail = Image.open(io.BytesIO(base64.b64decode(face["thumbnail"])))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= triton.CANVAS_SIDE  # the cut the embedder sees
    assert face["persons"] == []  # no min_score: no search
    assert rest.post("/detect", {"image": blank()}).json()["data"] == []


def test_detect_with_min_score_finds_each_face(rest, gallery):
    ids = {name: pid for pid, name in gallery["names"].items()}
    # Two enrolled people side by side in one picture.
    left, right = (Image.open(lfw.photos(lfw.identities()[i])[1]).convert("RGB") for i in (30, 31))
    pair = Image.new("RGB", (500, 250))
    pair.paste(left, (0, 0))
    pair.paste(right, (250, 0))
    body = {"image": lfw.b64(pair), "min_score": 0.2, "search_mode": "ACCURATE", "collection_id": gallery["collection"]}
    answered = rest.ok("/detect", body)["data"]
    assert len(answered) >= 2  # LFW photos have people in the background too: the subjects are the largest
    faces = sorted(answered[:2], key=lambda f: f["box"]["left"])
    for face, identity in zip(faces, (30, 31), strict=True):
        assert face["persons"] and face["persons"][0]["id"] == ids[lfw.identities()[identity]]
        assert all(p["score"] >= 0.2 for p in face["persons"])


def test_compare_matches_the_same_person_only(rest):
    same = rest.ok("/compare", {"probe": [photo(10, 0)], "gallery": [photo(10, 1), photo(10, 2)]})["data"]
    other = rest.ok("/compare", {"probe": [photo(10, 0)], "gallery": [photo(11, 0)], "compare_min_score": 0.7})["data"]
    assert same["match"] and same["score"] >= 0.8 and same["compare_min_score"] == 0.8
    assert same["result"] == {"score": same["score"], "compare_min_score": 0.8, "passed": True}
    assert not other["match"] and other["score"] < same["score"] and other["compare_min_score"] == 0.7
    assert other["result"]["passed"] is False
    missing = rest.post("/compare", {"probe": [photo(10, 0)], "gallery": []})
    assert (missing.status_code, missing.json()["message"]) == (400, "gallery is required: at least 1 base64 image")


def test_verify_against_an_enrolled_person(rest, gallery):
    ids = {name: pid for pid, name in gallery["names"].items()}
    person = ids[lfw.identities()[20]]
    yes = rest.ok("/verify", {"id": person, "images": [photo(20, 2)]})["data"]
    assert yes["passed"] and yes["person"]["id"] == person and yes["min_score"] == 0.8
    assert yes["match"]["id"] == person and yes["match"]["score"] == yes["score"]  # Verifik's: the person matched
    no = rest.ok("/verify", {"id": person, "images": [photo(21, 0)], "min_score": 0.5})["data"]
    assert not no["passed"] and "match" not in no and no["score"] < yes["score"]
    elsewhere = rest.collection("verify-elsewhere")
    outside = rest.post("/verify", {"id": person, "images": [photo(20, 2)], "collection_id": elsewhere})
    assert (outside.status_code, outside.json()["error"]) == (404, "unknown_person")
    unknown = rest.post("/verify", {"id": "00" + "cd" * 11, "images": [photo(20, 2)]})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_person")
