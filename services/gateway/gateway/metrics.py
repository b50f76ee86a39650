"""The gateway's Prometheus metrics, each defined once, served at /metrics on
GATEWAY_METRICS_PORT (config.py).

Names follow Prometheus conventions (base units, `_total` counters). A
cache's hit ratio is `rate(hits) / rate(hits + misses)` in PromQL, so it is
exported as the two counts it is made of.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Latency buckets from 2.5 ms to 10 s: a cached crop search on a GPU to an
# ACCURATE search of millions of faces on a CPU.
BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("facesearch_gateway_requests_total", "API calls answered, by RPC and gRPC status.", ["rpc", "code"])
LATENCY = Histogram("facesearch_gateway_request_seconds", "API call latency, by RPC.", ["rpc"], buckets=BUCKETS)
# decode: base64 and image decoding; triton: a request's embedder call,
# with any wait for a free one (crop_calls.py); indexer: one
# fan-out over the shards; cache: the persons of an answer; database: a
# search's scope read.
STAGE = Histogram(
    "facesearch_gateway_stage_seconds", "Time in each stage of a call, by stage.", ["stage"], buckets=BUCKETS
)
# Under load, searches that reach an indexer client together share a call
# (indexer_client.py): how many did is the batching's measure.
INDEXER_CALL_SEARCHES = Histogram(
    "facesearch_gateway_indexer_call_searches",
    "Searches sent in one indexer call.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
# Under load, requests waiting for a crop-embedder call share the next one
# (crop_calls.py).
EMBEDDER_CALL_REQUESTS = Histogram(
    "facesearch_gateway_embedder_call_requests",
    "Requests whose crops went in one crop-embedder call.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
BACKEND_ERRORS = Counter(
    "facesearch_gateway_backend_errors_total", "Failed calls to a backend (triton, indexer).", ["backend"]
)
# FAST searches whose best was weak and that looked again, deeper (shards.py).
SECOND_LOOKS = Counter("facesearch_gateway_fast_second_looks_total", "FAST searches that took a second look.")
CACHE = Counter("facesearch_gateway_cache_lookups_total", "Person cache lookups, by result (hit, miss).", ["result"])
# 1: the model's scores come from a fit on labelled faces (probabilities);
# 0: from the placeholder every unfitted model gets (they rank, no more).
SCORE_CALIBRATED = Gauge(
    "facesearch_score_calibrated", "Whether the served model's scores are calibrated (1) or not (0).", ["model"]
)


def serve(host: str, port: int) -> None:
    """Serves /metrics in a thread of its own; port 0 turns it off."""
    if port:
        start_http_server(port, addr=host)
        log.info("metrics", extra={"address": f"{host}:{port}"})
