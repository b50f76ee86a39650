"""Prometheus metrics move when they should: the gateway's requests, stages,
cache and per-shard counts of the indexer, scraped from the running stack,
with Envoy's and Triton's own pages beside them."""

from __future__ import annotations

import time

import httpx
import pytest
from PIL import Image

from devkit import lfw
from devkit.client import scrape, scrape_all

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]

RPC_OK = ("facesearch_gateway_requests_total", (("code", "OK"), ("rpc", "SearchCrops")))
RPC_BAD = ("facesearch_gateway_requests_total", (("code", "INVALID_ARGUMENT"), ("rpc", "SearchCrops")))


def stage(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("facesearch_gateway_stage_seconds_count", (("stage", name),))


def cache(result: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("facesearch_gateway_cache_lookups_total", (("result", result),))


def moved(before: dict, after: dict, key) -> float:
    return after.get(key, 0) - before.get(key, 0)


def gateways(stack) -> dict:
    """Every gateway's samples, summed: whichever took the requests."""
    return scrape_all(stack.gateways.metrics_ports)


def test_gateway_and_indexer_metrics_move_with_requests(stack, rest):
    collection = rest.collection("metrics")
    names = lfw.identities()[:2]
    for name in names:
        rest.enroll(name, lfw.photos(name)[0], [collection])
    indexer_port = stack.indexers.metrics_ports[0]
    before = gateways(stack)
    probe = [lfw.b64(lfw.crop(lfw.photos(names[0])[1]))]
    for _ in range(2):  # the second finds the person in the cache
        assert rest.search(probe, collection_id=collection).status_code == 200
    blank = rest.search([lfw.b64(Image.new("RGB", (120, 120), (128, 128, 128)))], collection_id=collection)
    assert blank.json()["error"] == "no_face"
    after = gateways(stack)

    assert moved(before, after, RPC_OK) == 2 and moved(before, after, RPC_BAD) == 1
    latency = ("facesearch_gateway_request_seconds_count", (("rpc", "SearchCrops"),))
    assert moved(before, after, latency) == 3
    assert moved(before, after, stage("decode")) == 3
    assert moved(before, after, stage("triton")) == 3  # the no-face crop was embedded, then refused
    assert moved(before, after, stage("indexer")) == 2
    # The scope is read beside the embedding: the refused crop's read may have run too.
    assert moved(before, after, stage("database")) in (2, 3)
    assert moved(before, after, cache("hit")) >= 1 and moved(before, after, cache("miss")) >= 1
    assert moved(before, after, ("facesearch_gateway_backend_errors_total", (("backend", "triton"),))) == 0

    shard = (("shard", collection), ("tenant", "default"))
    deadline = time.monotonic() + 10
    while (indexer := scrape(indexer_port)).get(("facesearch_indexer_change_log_lag", ()), 1) != 0:
        assert time.monotonic() < deadline, "the indexer did not catch up"
        time.sleep(0.2)
    assert indexer[("facesearch_indexer_shard_faces", shard)] == 2
    assert indexer[("facesearch_indexer_fast_index_ready", shard)] == 0  # two faces: FAST is exact
    assert indexer[("facesearch_indexer_change_log_applied", ())] > 0

    rest.ok(f"/collections/{collection}", method="DELETE")
    deadline = time.monotonic() + 10
    while ("facesearch_indexer_shard_faces", shard) in scrape(indexer_port):
        assert time.monotonic() < deadline, "the deleted collection's shard is still counted"
        time.sleep(0.2)


def test_envoy_and_triton_serve_their_own_metrics(stack):
    envoy = httpx.get(f"http://127.0.0.1:{stack.ports.envoy_admin}/stats/prometheus", timeout=10)
    triton = httpx.get(f"http://127.0.0.1:{stack.ports.embedder_metrics}/metrics", timeout=10)
    assert "envoy_cluster_upstream_rq_total" in envoy.text
    assert "nv_inference_request_success" in triton.text
