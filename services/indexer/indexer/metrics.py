"""The indexer's Prometheus metrics, each defined once, served at /metrics on
INDEXER_METRICS_PORT (config.py).

Counters and histograms are updated where things happen; what the shards
hold (faces, FAST index state) and where the follower stands in the change
log are read from them when Prometheus scrapes, so there is no second copy of
that state to keep right.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .follower import Follower

log = logging.getLogger(__name__)

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

SEARCHES = Counter("facesearch_indexer_searches_total", "Searches answered, by mode and gRPC status.", ["mode", "code"])
SEARCH_LATENCY = Histogram(
    "facesearch_indexer_search_seconds",
    "Search latency (catch-up and batching included), by mode.",
    ["mode"],
    buckets=BUCKETS,
)
FAST_BUILDS = Histogram(
    "facesearch_indexer_fast_index_build_seconds",
    "Time to train and fill a shard's FAST (IVF) index.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)


class ShardCollector(Collector):
    """Faces, persons and FAST index state per held shard, and the change log's
    head, the position applied and the lag between them."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower

    def collect(self) -> Iterator[GaugeMetricFamily]:
        faces = GaugeMetricFamily(
            "facesearch_indexer_shard_faces", "Faces in a held shard.", labels=["tenant", "shard"]
        )
        persons = GaugeMetricFamily(
            "facesearch_indexer_shard_persons", "Persons in a held shard.", labels=["tenant", "shard"]
        )
        fast = GaugeMetricFamily(
            "facesearch_indexer_fast_index_ready",
            "1 when a shard's FAST searches use its IVF index, 0 while they are exact.",
            labels=["tenant", "shard"],
        )
        for (tenant, shard_key), shard in list(self.follower.registry.items()):
            faces.add_metric([tenant, shard_key], shard.faces)
            persons.add_metric([tenant, shard_key], shard.persons)
            fast.add_metric([tenant, shard_key], int(shard.ann is not None))
        yield faces
        yield persons
        yield fast
        yield GaugeMetricFamily(
            "facesearch_indexer_change_log_applied",
            "The change-log position the shards reflect.",
            value=self.follower.applied,
        )
        yield GaugeMetricFamily(
            "facesearch_indexer_change_log_lag",
            "Changes in the log (as last read) that the shards do not reflect yet.",
            value=max(0, self.follower.head - self.follower.applied),
        )


def serve(follower: Follower, host: str, port: int) -> None:
    """Registers the shard metrics and serves /metrics in a thread; port 0 turns it off."""
    if port:
        REGISTRY.register(ShardCollector(follower))
        start_http_server(port, addr=host)
        log.info("metrics", extra={"address": f"{host}:{port}"})
