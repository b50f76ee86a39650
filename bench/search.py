"""search/crops with 1 crop against 1,300 enrolled persons (300 lfw-dev
identities and 1,000 distractors): REST through Envoy, gRPC through Envoy,
gRPC straight to the gateway, and the same work in one process (the crop
embedder's graph in PyTorch, exact FAISS search) as the baseline, each in
steady state after one untimed pass. Also prints the
enrollment rate and rank-1 with the distractors in the gallery."""

from __future__ import annotations

import tempfile
from pathlib import Path

import faiss
import numpy as np
from google.protobuf import struct_pb2
from PIL import Image

from bench.common import console, print_table, timed_loop
from bench.embedder import real_crops, served
from devkit import lfw
from devkit.client import CallFailed, Rest, grpc_stub, scrape_all
from devkit.recipe import Recipe
from devkit.stack import Stack
from facesearch.v1 import facesearch_pb2 as pb
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

WORKERS = 4


def gallery() -> list[tuple[str, Path]]:
    people = [(n, lfw.photos(n)[0]) for n in lfw.identities()]
    return people + [(p.stem, p) for p in lfw.distractors()]


def probes() -> list[tuple[str, str]]:
    return [(n, lfw.b64(lfw.crop(lfw.photos(n)[1]))) for n in lfw.identities()]


class InProcess:
    """The whole search in one process: the baseline the services are measured against."""

    def __init__(self, people: list[tuple[str, Path]]):
        self.recipe = Recipe(SPEC)
        self.names = [n for n, _ in people]
        self.index = faiss.IndexFlatIP(SPEC.dim)
        cuts = [self.recipe.cut(np.asarray(lfw.portrait(photo))) for _, photo in people]
        self.index.add(self.recipe.crops([c for c in cuts if c is not None])[0])
        self.names = [n for n, c in zip(self.names, cuts, strict=True) if c is not None]

    def embed(self, crop: np.ndarray) -> np.ndarray:
        return self.recipe.crops([crop])[0][0]

    def search(self, crop_b64: str) -> str:
        import base64
        import io

        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(crop_b64))).convert("RGB"))
        _, ids = self.index.search(self.embed(pixels)[None], 10)
        return self.names[ids[0][0]]


def print_stages(before: dict, after: dict) -> None:
    """Where a search's time went, from the gateway's stage histograms (mean ms)."""

    def mean_ms(name: str, labels: tuple) -> float:
        count = after.get((f"{name}_count", labels), 0) - before.get((f"{name}_count", labels), 0)
        total = after.get((f"{name}_sum", labels), 0) - before.get((f"{name}_sum", labels), 0)
        return 1e3 * total / count if count else float("nan")

    stages = ", ".join(
        f"{stage} {mean_ms('facesearch_gateway_stage_seconds', (('stage', stage),)):.1f}"
        for stage in ("decode", "database", "triton", "indexer", "cache")
    )
    whole = mean_ms("facesearch_gateway_request_seconds", (("rpc", "SearchCrops"),))
    console.print(f"REST via Envoy, mean ms in the gateway: {stages}; the whole RPC {whole:.1f}")


def main() -> None:
    people, queries = gallery(), probes()
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), lfw.evaluation_model()).running() as stack:
        rest = Rest(stack.rest, stack.token())
        collection = rest.collection("bench")
        ids: dict[str, str] = {}

        refused: list[str] = []

        def enroll(person):
            name, photo = person

            def run() -> int:
                try:
                    ids[rest.enroll(name, photo, [collection])["id"]] = name
                except CallFailed:
                    refused.append(name)
                return 1

            return run

        enrolled = timed_loop("enroll over REST", [enroll(p) for p in people], WORKERS)
        if refused:
            console.print(f"refused (several faces in every cut): {', '.join(refused)}")
        embedder_alone = served(real_crops(), f"127.0.0.1:{stack.ports.embedder_grpc}")[1]
        console.print(
            f"enrolled {enrolled.items} persons over REST with {WORKERS} clients: "
            f"{enrolled.rate:.1f} persons/s, p50 {enrolled.pct(50):.0f} ms, p99 {enrolled.pct(99):.0f} ms; "
            "the embedder alone "
            f"({embedder_alone.name}): {embedder_alone.rate:.1f} crops/s; "
            f"ratio {enrolled.rate / embedder_alone.rate:.2f}"
        )

        def rest_search(name, crop, hits):
            def run() -> int:
                data = rest.search([crop], collection_id=collection).json()["data"]
                hits.append(bool(data) and ids.get(data[0]["id"]) == name)
                return 1

            return run

        def grpc_search(stub, name, crop, hits):
            request = pb.SearchCropsRequest(
                images=[crop],
                min_score=struct_pb2.Value(number_value=0.5),
                search_mode="ACCURATE",
                collection_id=collection,
            )

            def run() -> int:
                data = stub.SearchCrops(request, timeout=60).data
                hits.append(bool(data) and ids.get(data[0].id) == name)
                return 1

            return run

        results, rank1 = [], {}
        # One untimed pass first: the rows measure searches in steady state,
        # every person already in Redis (the first search after enrollment
        # reads each one from PostgreSQL), whichever row runs first.
        timed_loop("warm-up", [rest_search(n, c, []) for n, c in queries])
        hits: list[bool] = []
        before = scrape_all(stack.gateways.metrics_ports)
        results.append(timed_loop("REST via Envoy", [rest_search(n, c, hits) for n, c in queries]))
        rank1["REST via Envoy"] = np.mean(hits)
        print_stages(before, scrape_all(stack.gateways.metrics_ports))
        for label, target in (
            ("gRPC via Envoy", stack.grpc_target),
            ("gRPC to gateway", f"127.0.0.1:{stack.ports.gateway}"),
        ):
            stub = grpc_stub(target, stack.token())
            hits = []
            results.append(timed_loop(label, [grpc_search(stub, n, c, hits) for n, c in queries]))
            rank1[label] = np.mean(hits)

    local = InProcess(people)
    hits = []

    def local_search(name, crop):
        def run() -> int:
            hits.append(local.search(crop) == name)
            return 1

        return run

    baseline = timed_loop("in-process pipeline", [local_search(n, c) for n, c in queries])
    rank1[baseline.name] = np.mean(hits)
    print_table(
        f"search/crops, 1 crop, {len(people)} enrolled, sequential, CPU", [*results, baseline], baseline, "searches"
    )
    for name, value in rank1.items():
        console.print(
            f"rank-1 {name}: {value:.4f} ({len(queries)} probes, {len(people)} enrolled incl. 1,000 distractors)"
        )


if __name__ == "__main__":
    main()
