"""A small REST and gRPC client of the public API, for tests and benches.

It raises `CallFailed` (with the answer) where a call was expected to succeed:
callers decide what a failure means; nothing here asserts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
from google.protobuf import struct_pb2

from devkit import lfw
from facesearch.v1 import facesearch_pb2 as pb
from facesearch.v1 import facesearch_pb2_grpc as pb_grpc

API = "/v2/face-recognition"


class CallFailed(Exception):
    """A call that should have succeeded did not; `response` is its answer."""

    def __init__(self, response: httpx.Response):
        super().__init__(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
        self.response = response


class Rest:
    def __init__(self, base: str, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base + API, timeout=60, headers=headers)

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body)

    def ok(self, path: str, body: dict | None = None, method: str = "POST", **params) -> dict:
        response = self.http.request(method, path, json=body, params=params or None)
        if response.status_code != 200:
            raise CallFailed(response)
        return response.json()

    def collection(self, name: str) -> str:
        return self.ok("/collections", {"name": name})["data"]["id"]

    def person(self, name: str, images: list[str], collections: list[str], **fields) -> dict:
        return self.ok("/persons", {"name": name, "images": images, "collections": collections, **fields})["data"]

    def enroll(self, name: str, photo, collections: list[str], **fields) -> dict:
        """Enrolls one photo the way a client would: the portrait, or, when the
        service finds two people in it, a tighter cut around the subject."""

        for image in (lfw.portrait(photo), lfw.crop(photo, side=140), lfw.centre(photo)):
            response = self.post(
                "/persons", {"name": name, "images": [lfw.b64(image)], "collections": collections, **fields}
            )
            if response.status_code == 200:
                return response.json()["data"]
            if response.json().get("error") != "multiple_faces":
                break
        raise CallFailed(response)

    def search(self, images: list[str], min_score="0.5", mode="ACCURATE", **fields) -> httpx.Response:
        return self.post("/search/crops", {"images": images, "min_score": min_score, "search_mode": mode, **fields})


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str):
        self.metadata = (("authorization", f"Bearer {token}"),)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(details._replace(metadata=(*(details.metadata or ()), *self.metadata)), request)


def grpc_stub(target: str, token: str | None = None) -> pb_grpc.FaceSearchStub:
    channel = grpc.insecure_channel(target)
    if token:
        channel = grpc.intercept_channel(channel, _Bearer(token))
    return pb_grpc.FaceSearchStub(channel)


def grpc_search(stub, images: list[str], min_score: float = 0.5, mode: str = "ACCURATE", **fields) -> pb.SearchResponse:
    request = pb.SearchCropsRequest(
        images=images, min_score=struct_pb2.Value(number_value=min_score), search_mode=mode, **fields
    )
    return stub.SearchCrops(request, timeout=60)


def parallel(fn, items, workers: int = 4) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus /metrics page on loopback: (sample name, sorted labels) -> value.
    A sample not there reads as 0 through `.get(key, 0)`."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape_all(ports) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Several processes' /metrics summed sample by sample (the gateways,
    whichever of them Envoy sent the requests to)."""
    total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for port in ports:
        for key, value in scrape(port).items():
            total[key] = total.get(key, 0) + value
    return total


def facesearch_calibrate(rest: str, folder, token: str, *flags: str):
    """`facesearch calibrate FOLDER` against the REST API at `rest`, as an operator runs it."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "facesearch_cli", "calibrate", str(folder), "--url", rest, *flags]
    env = {**os.environ, "FACESEARCH_TOKEN": token, "COLUMNS": "200"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
