"""A corpus of hostile inputs through Envoy: each gets a 4xx with a specific
message (never a 5xx), nothing is stored, and the service keeps answering."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import httpx
import pytest
from PIL import Image

from devkit import lfw
from devkit.client import API

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG header claiming side x side pixels over a tiny zlib stream
    of zeros: 900 M pixels in a few hundred kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # only the first rows: enough to be a bomb's shape
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


FACE = lfw.photos(lfw.identities()[3])[0]
JPEG = encoded(lfw.crop(FACE), "JPEG")
PNG = encoded(lfw.crop(FACE), "PNG")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def crops_body(**change) -> dict:
    return {"images": [b64(JPEG)], "min_score": 0.7, "search_mode": "ACCURATE", **change}


# name: (method, path, JSON body or raw bytes, expected status, reason, words the message must contain)
CORPUS = {
    "truncated JPEG": (
        "POST",
        "/search/crops",
        crops_body(images=[b64(JPEG[: len(JPEG) // 3])]),
        400,
        "invalid_image",
        "images[0] is not a readable image",
    ),
    "truncated PNG": (
        "POST",
        "/search/crops",
        crops_body(images=[b64(PNG[: len(PNG) // 3])]),
        400,
        "invalid_image",
        "images[0] is not a readable image",
    ),
    "PNG bomb (30000x30000)": (
        "POST",
        "/persons",
        {"name": "bomb", "collections": ["00" + "0" * 22], "images": [b64(png_bomb())]},
        400,
        "image_too_large",
        "images[0] is 30000x30000 pixels",
    ),
    "GIF": (
        "POST",
        "/search/crops",
        crops_body(images=[b64(encoded(lfw.crop(FACE), "GIF"))]),
        400,
        "unsupported_image_format",
        "images[0] is a GIF image",
    ),
    "1x1 image": (
        "POST",
        "/search/crops",
        crops_body(images=[b64(encoded(Image.new("RGB", (1, 1)), "PNG"))]),
        400,
        "image_too_small",
        "images[0] is 1x1 pixels",
    ),
    "huge JSON (20 MiB)": (
        "POST",
        "/search/crops",
        b'{"images":["' + b"A" * (20 << 20) + b'"]}',
        413,
        "request_too_large",
        "larger than 16 MiB",
    ),
    "deep JSON nesting": (
        "POST",
        "/search/crops",
        ('{"images":' + nested(10_000) + "}").encode(),
        400,
        "invalid_request",
        "too deep",
    ),
    "images a number": ("POST", "/search/crops", crops_body(images=7), 400, "invalid_request", "images"),
    "images an object": ("POST", "/search/crops", crops_body(images={"a": 1}), 400, "invalid_request", "images"),
    "image a number": ("POST", "/search/crops", crops_body(images=[12]), 400, "invalid_request", "images"),
    # Envoy's transcoder does not name the field here; the reason is still specific.
    "search_mode a list": (
        "POST",
        "/search/crops",
        crops_body(search_mode=["FAST"]),
        400,
        "invalid_request",
        "not repeating, cannot start list",
    ),
    "max_results a float": (
        "POST",
        "/search/crops",
        crops_body(max_results=2.5),
        400,
        "invalid_request",
        "max_results",
    ),
    "name a number": ("POST", "/collections", {"name": 5}, 400, "invalid_request", "name"),
    "name an object": ("POST", "/collections", {"name": {"$gt": ""}}, 400, "invalid_request", "name"),
    "collections a string of a bad id": (
        "POST",
        "/persons",
        {"name": "x", "collections": ["../../etc"], "images": [b64(JPEG)]},
        400,
        "invalid_id",
        "collections[0] must be a collection id (24 hexadecimal characters) or code",
    ),
    "NaN min_score": ("POST", "/search/crops", crops_body(min_score="NaN"), 400, "invalid_min_score", "got nan"),
    "Infinity min_score": (
        "POST",
        "/search/crops",
        crops_body(min_score="Infinity"),
        400,
        "invalid_min_score",
        "got inf",
    ),
    "bare NaN literal": (
        "POST",
        "/search/crops",
        b'{"images":[],"min_score":NaN,"search_mode":"FAST"}',
        400,
        "invalid_request",
        "",
    ),
    "control characters in a name": (
        "POST",
        "/collections",
        {"name": "evil\u0000\u001b[31mred"},
        400,
        "invalid_name",
        "control character (U+0000)",
    ),
    "a 10 KB name": ("POST", "/collections", {"name": "x" * 10_000}, 400, "invalid_name", "longer than 256 characters"),
    "invalid UTF-8": ("POST", "/collections", b'{"name": "\xff\xfe\xfa"}', 400, "invalid_request", ""),
    "not JSON": ("POST", "/collections", b"name=x", 400, "invalid_request", ""),
    "eleven crops": (
        "POST",
        "/search/crops",
        crops_body(images=[b64(JPEG)] * 11),
        400,
        "too_many_images",
        "images takes 1 to 10 images, got 11",
    ),
    "four person images": (
        "POST",
        "/persons",
        {"name": "x", "collections": ["00" + "0" * 22], "images": [b64(JPEG)] * 4},
        400,
        "too_many_images",
        "images takes 1 to 3 images, got 4",
    ),
    "a page of a million": ("GET", "/persons?limit=1000000", None, 400, "invalid_limit", "limit must be between"),
    "unknown query parameter": (
        "GET",
        "/persons?limit=5&admin=1",
        None,
        400,
        "invalid_request",
        'Could not find field "admin"',
    ),
    "a negative page": ("GET", "/collections?page=-1", None, 400, "invalid_page", "page must be 1 or more, got -1"),
}


@pytest.fixture(scope="module")
def client(stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.rest + API, timeout=120, headers={"Authorization": f"Bearer {stack.token('hostile-tenant')}"}
    )


@pytest.mark.parametrize("case", list(CORPUS), ids=list(CORPUS))
def test_hostile_input_is_refused_specifically(client, case):
    method, path, body, status, reason, words = CORPUS[case]
    raw = body if isinstance(body, bytes) else None
    response = client.request(
        method,
        path,
        json=None if raw is not None else body,
        content=raw,
        headers={"content-type": "application/json"} if raw is not None else None,
    )
    assert response.status_code == status, response.text[:500]
    answer = response.json()
    assert (answer["error"], answer["code"] != "") == (reason, True), answer
    assert words in answer["message"], answer
    assert answer["message"].strip()


def test_after_the_corpus_nothing_was_stored_and_the_service_answers(client, stack):
    assert client.get("/collections").json()["pagination"]["total"] == 0
    assert client.get("/persons").json()["pagination"]["total"] == 0
    assert httpx.get(f"{stack.rest}/healthz", timeout=10).status_code == 200
    response = client.post("/search/crops", json=crops_body())
    assert response.status_code == 200, response.text


def test_unknown_fields_are_ignored_and_never_stored(client):
    """The proto3 JSON mapping Envoy's transcoder follows drops fields it does
    not know (it has no option to refuse them): clients written against a
    newer API keep working, and nothing unknown reaches the catalog."""
    response = client.post("/collections", json={"name": "with-extras", "owner": "root", "data": {"x": 1}})
    assert response.status_code == 200, response.text
    created = response.json()["data"]
    assert "owner" not in created
    stored = client.get(f"/collections/{created['id']}").json()["data"]
    assert "owner" not in stored and "data" not in stored and stored["name"] == "with-extras"
    assert client.delete(f"/collections/{created['id']}").status_code == 200
