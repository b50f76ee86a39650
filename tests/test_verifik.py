"""A Verifik client switches its base URL and keeps working: one test per
route of Verifik's face-recognition API, each sending the request body of
Verifik's own docs example (docs.verifik.co/biometrics/..., /resources/...,
demos.verifik.co) with real faces, and reading the answer the way that
example's client code does. docs/verifik.md is the field-by-field table.

Each test is a tenant of its own, as each Verifik account is."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from devkit import lfw
from devkit.client import API

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


class Verifik:
    """What the docs' Python examples do: requests.<verb>(url, json=payload, headers=headers)."""

    def __init__(self, stack, tenant: str):
        self.base = f"{stack.rest}{API}"
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stack.token(tenant)}"}

    def post(self, path: str, payload: dict) -> httpx.Response:
        return httpx.post(self.base + path, json=payload, headers=self.headers, timeout=60)

    def get(self, path: str, params: dict | None = None) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=self.headers, timeout=60)

    def put(self, path: str, payload: dict) -> httpx.Response:
        return httpx.put(self.base + path, json=payload, headers=self.headers, timeout=60)

    def delete(self, path: str, params: dict | None = None) -> httpx.Response:
        return httpx.delete(self.base + path, params=params, headers=self.headers, timeout=60)

    def json(self, response: httpx.Response) -> dict:
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def verifik(stack) -> Verifik:
    return Verifik(stack, f"verifik-{uuid.uuid4().hex[:8]}")


def portrait(identity: int, n: int = 0) -> str:
    return lfw.b64(lfw.portrait(lfw.photos(lfw.identities()[identity])[n]))


def small_crop(identity: int, n: int) -> str:
    return lfw.b64(lfw.crop(lfw.photos(lfw.identities()[identity])[n]))


def signed_at(answer: dict) -> datetime:
    """Verifik's signature time, "September 29, 2023 11:55 PM" (UTC)."""
    return datetime.strptime(answer["signature"]["dateTime"], "%B %d, %Y %I:%M %p").replace(tzinfo=UTC)


def enrolled(verifik: Verifik, identities: list[int]) -> tuple[str, dict[int, str]]:
    """A collection and a person per identity in it: (collection _id, identity -> person _id)."""
    collection = verifik.json(verifik.post("/collections", {"name": "people"}))["data"]["_id"]
    persons = {}
    for i in identities:
        body = {"name": lfw.identities()[i], "images": [portrait(i)], "collections": [collection]}
        persons[i] = verifik.json(verifik.post("/persons", body))["data"]["_id"]
    return collection, persons


def demo_person(person: dict) -> dict:
    """demos.verifik.co's SearchPersonResult reader, in Python: each field
    read only when it has the type the demo expects."""
    return {
        "id": person["id"] if isinstance(person.get("id"), str) else "",
        "name": person["name"] if isinstance(person.get("name"), str) else "unknownPerson",
        "gender": person["gender"] if isinstance(person.get("gender"), str) else "",
        "dateOfBirth": person["date_of_birth"] if isinstance(person.get("date_of_birth"), str) else "",
        "nationality": person["nationality"] if isinstance(person.get("nationality"), str) else "",
        "score": person["score"] if isinstance(person.get("score"), (int, float)) else None,
        "createDate": person["create_date"] if isinstance(person.get("create_date"), str) else "",
        "thumbnails": [t["thumbnail"] for t in person.get("thumbnails", []) if isinstance(t, dict)],
    }


def test_search_crops(verifik, image_host):
    """/biometrics/search-crops: base64 crops and HTTPS URLs (fetched server-side)."""
    collection, persons = enrolled(verifik, [40, 41])
    payload = {
        "images": [small_crop(40, 1)],
        "collection_id": collection,
        "min_score": 0.7,
        "search_mode": "FAST",
        "max_results": 10,
    }
    r = verifik.json(verifik.post("/search/crops", payload))
    matches = sorted((demo_person(p) for p in r["data"]), key=lambda p: -(p["score"] or -1))
    assert matches[0]["id"] == persons[40] and matches[0]["name"] == lfw.identities()[40]
    assert matches[0]["score"] >= 0.7 and matches[0]["thumbnails"] and matches[0]["createDate"]
    assert abs((datetime.now(UTC) - signed_at(r)).total_seconds()) < 120

    url = image_host.put("crop-41.jpg", base64.b64decode(small_crop(41, 1)))
    r = verifik.json(verifik.post("/search/crops", {**payload, "images": [url]}))
    assert r["data"][0]["id"] == persons[41]


def test_search(verifik):
    """/biometrics/search: whole photos, min_score 0.2-1."""
    collection, persons = enrolled(verifik, [42, 43])
    payload = {
        "images": [portrait(42, 1)],
        "collection_id": collection,
        "min_score": 0.7,
        "search_mode": "FAST",
        "max_results": 10,
    }
    r = verifik.json(verifik.post("/search", payload))
    assert [demo_person(p)["id"] for p in r["data"]][:1] == [persons[42]]


def test_detect(verifik, image_host):
    """The older /search/face-detect page's body (min_score, search_mode,
    max_results: what the demo says the API validates) and the newer
    /liveness/face-detection page's (an HTTPS URL, return_landmarks)."""
    _, persons = enrolled(verifik, [44])
    photo = lfw.photos(lfw.identities()[44])[1]
    r = verifik.json(
        verifik.post(
            "/detect",
            {"image": lfw.b64(lfw.portrait(photo)), "max_results": 99, "min_score": 0.8, "search_mode": "FAST"},
        )
    )
    face = r["data"][0]
    box = face["box"]
    assert 0 <= box["left"] < box["right"] <= 170 and 0 <= box["top"] < box["bottom"] <= 170
    assert all(len(face["landmarks"][k]) == 2 for k in ("nose", "left_eye", "right_eye", "left_mouth", "right_mouth"))
    assert 0.8 <= face["detection_score"] <= 1 and face["thumbnail"]
    assert [p["id"] for p in face["persons"]] == [persons[44]]  # the face, searched in the caller's collections

    url = image_host.put("photo-44.jpg", photo.read_bytes())
    r = verifik.json(verifik.post("/detect", {"image": url, "return_landmarks": True, "return_attributes": True}))
    assert r["data"] and r["data"][0]["persons"] == []  # no min_score: detection only


def parse_face_compare_result(data: dict) -> tuple[bool, float]:
    """demos.verifik.co's parseFaceCompareResult: data.result when there,
    `passed` preferred, else the score against the threshold (0.85)."""
    doc = data.get("data", data)
    inner = doc.get("result", doc)
    score = inner.get("score", 0)
    score = score / 100 if score > 1 else score
    if isinstance(inner.get("passed"), bool):
        return inner["passed"], score
    return score >= inner.get("compare_min_score", doc.get("compare_min_score", 0.85)), score


def test_compare(verifik):
    """/biometrics/compare (data.score) and the demo's result/passed form."""
    r = verifik.json(
        verifik.post(
            "/compare",
            {"probe": [portrait(45, 0)], "gallery": [portrait(45, 1), portrait(45, 2)], "search_mode": "FAST"},
        )
    )
    assert 0.85 <= r["data"]["score"] <= 1
    matched, score = parse_face_compare_result(
        verifik.json(
            verifik.post(
                "/compare", {"gallery": [portrait(45, 1)], "probe": [portrait(45, 0)], "compare_min_score": 0.85}
            )
        )
    )
    assert matched and score >= 0.85
    matched, score = parse_face_compare_result(
        verifik.json(
            verifik.post(
                "/compare", {"gallery": [portrait(46, 0)], "probe": [portrait(45, 0)], "compare_min_score": 0.85}
            )
        )
    )
    assert not matched and score < 0.85


def test_verify(verifik):
    """/biometrics/verify-face: data.match is the person when it passes."""
    collection, persons = enrolled(verifik, [47, 48])
    payload = {
        "id": persons[47],
        "images": [portrait(47, 1), portrait(47, 2)],
        "min_score": 0.75,
        "search_mode": "FAST",
        "collection_id": collection,
    }
    match = verifik.json(verifik.post("/verify", payload))["data"]["match"]
    assert (match["id"], match["name"]) == (persons[47], lfw.identities()[47])
    assert match["score"] >= 0.75 and match["thumbnails"] and match["collections"] == [collection]
    other = verifik.json(verifik.post("/verify", {**payload, "id": persons[48]}))["data"]
    assert "match" not in other and other["passed"] is False


def test_collections(verifik):
    """/resources/create-a-collection, retrieve, list, update and delete."""
    payload = {"name": "Test Example", "description": "Example on how to create a collection"}
    created = verifik.json(verifik.post("/collections", payload))["data"]
    assert (created["name"], created["description"]) == (payload["name"], payload["description"])
    assert uuid.UUID(created["code"]) and created["createdAt"] == created["updatedAt"]
    got = verifik.json(verifik.get(f"/collections/{created['_id']}"))["data"]
    assert got == created
    assert verifik.json(verifik.get(f"/collections/{created['code']}"))["data"] == created  # the code names it too

    for i in range(11):  # more than one default page
        verifik.post("/collections", {"name": f"more {i}"})
    listed = verifik.json(verifik.get("/collections"))["data"]  # no query parameters: all of them
    assert len(listed) == 12 and {c["_id"] for c in listed} >= {created["_id"]}
    assert all({"_id", "name", "code", "description"} <= set(c) for c in listed)

    updated = verifik.json(
        verifik.put(f"/collections/{created['_id']}", {"name": "Updated name", "description": "Updated description"})
    )["data"]
    assert (updated["_id"], updated["name"], updated["description"]) == (
        created["_id"],
        "Updated name",
        "Updated description",
    )
    gone = verifik.json(verifik.delete(f"/collections/{created['_id']}"))["data"]
    assert gone["_id"] == created["_id"] and gone["name"] == "Updated name"
    assert verifik.get(f"/collections/{created['_id']}").status_code == 404


def test_persons(verifik):
    """/resources/create-a-person, retrieve, list, update and delete, with the
    collection named by its code as the older page's cURL does."""
    collection = verifik.json(verifik.post("/collections", {"name": "Test Example"}))["data"]
    payload = {
        "name": "John Doe",
        "images": [portrait(49, 0), portrait(49, 1)],
        "gender": "M",
        "date_of_birth": "1990-01-15",
        "nationality": "US",
        "collections": [collection["code"]],
        "notes": "VIP customer",
    }
    created = verifik.json(verifik.post("/persons", payload))
    person = created["data"]
    assert created["id"] and created["signature"]["dateTime"]
    assert (person["name"], person["gender"], person["date_of_birth"], person["nationality"], person["notes"]) == (
        "John Doe", "M", "1990-01-15", "US", "VIP customer",
    )  # fmt: skip
    assert person["collections"] == [collection["_id"]] and len(person["thumbnails"]) == 2
    assert person["createdAt"] == person["updatedAt"]
    assert verifik.json(verifik.get(f"/persons/{person['_id']}"))["data"] == person

    params = {"page": 1, "limit": 10, "status": "active", "populates[]": "collections"}
    listed = verifik.json(verifik.get("/persons", params))
    assert [p["_id"] for p in listed["data"]] == [person["_id"]]
    assert listed["pagination"] == {"page": 1, "limit": 10, "total": 1, "pages": 1}
    assert verifik.json(verifik.get("/persons", {**params, "status": "pending"}))["data"] == []

    updated = verifik.json(
        verifik.put(
            f"/persons/{person['_id']}", {"name": "John Doe Updated", "gender": "M", "notes": "Updated VIP customer"}
        )
    )["data"]
    assert (updated["name"], updated["notes"], updated["thumbnails"]) == (
        "John Doe Updated",
        "Updated VIP customer",
        person["thumbnails"],
    )
    assert updated["updatedAt"] >= person["updatedAt"]

    assert verifik.json(verifik.delete(f"/persons/{person['_id']}"))["data"]["_id"] == person["_id"]
    assert verifik.get(f"/persons/{person['_id']}").status_code == 404


def test_a_person_needs_no_collection(verifik):
    """collections is optional at create: the person is enrolled, verify
    finds it, and no search does until it joins a collection."""
    person = verifik.json(verifik.post("/persons", {"name": "Solo", "images": [portrait(50, 0)]}))["data"]
    assert person["collections"] == []
    match = verifik.json(verifik.post("/verify", {"id": person["_id"], "images": [portrait(50, 1)], "min_score": 0.5}))
    assert match["data"]["match"]["id"] == person["_id"]
    crops = {"images": [small_crop(50, 2)], "min_score": 0.5, "search_mode": "ACCURATE"}
    assert verifik.json(verifik.post("/search/crops", crops))["data"] == []


@pytest.mark.parametrize(
    "route",
    [
        "/liveness",
        "/liveness-score",
        "/compare-with-liveness",
        "/compare-live",
        "/search-live-face",
        "/search-active-user",
        "/persons/search-live-face",
    ],
)
def test_liveness_is_refused_clearly(verifik, stack, route):
    body = {"os": "DESKTOP", "image": portrait(51), "liveness_min_score": 0.6}
    response = verifik.post(route, body)
    assert response.status_code == 501
    assert response.json() == {
        "error": "liveness_not_available",
        "message": response.json()["message"],
        "code": "UNIMPLEMENTED",
    }
    assert "liveness is not available" in response.json()["message"]
    assert httpx.post(verifik.base + route, json=body, timeout=30).status_code == 401  # the token is still checked


def test_image_urls_are_refused_by_reason_and_store_nothing(verifik, image_host):
    """The stack fetches from `localhost` only: an IP literal, the metadata
    address and a redirect to a private address are refused with the field
    named, and the person is not created."""
    collection = verifik.json(verifik.post("/collections", {"name": "urls"}))["data"]["_id"]
    good = image_host.put("portrait-52.jpg", base64.b64decode(portrait(52)))
    cases = {
        image_host.url("/image/portrait-52.jpg", host="127.0.0.1"): "image_url_not_allowed",
        "https://169.254.169.254/latest/meta-data/": "image_url_not_allowed",
        image_host.redirect("https://10.1.2.3/face.jpg"): "image_url_not_allowed",
        f"http://localhost:{image_host.port}/image/portrait-52.jpg": "image_url_not_allowed",
        image_host.url("/status/404"): "image_url_unreachable",
        image_host.put("not-an-image.html", b"<html></html>"): "invalid_image",
    }
    for url, reason in cases.items():
        response = verifik.post("/persons", {"name": "Never", "images": [good, url], "collections": [collection]})
        assert (response.status_code, response.json()["error"]) == (400, reason), (url, response.text)
        assert response.json()["message"].startswith("images[1]"), response.text
    assert verifik.json(verifik.get("/persons"))["data"] == []
    created = verifik.json(
        verifik.post("/persons", {"name": "From URLs", "images": [good], "collections": [collection]})
    )
    assert created["data"]["name"] == "From URLs"
