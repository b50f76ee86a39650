"""Embedder throughput: the model served by Triton (dynamic batching) next to
the same model called in-process with PyTorch, on the same aligned faces."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import tritonclient.grpc as triton

from bench.common import Result, print_table, timed_loop
from embedder import network
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC
from tools import lfw
from tools.inprocess import Recipe
from tools.stack import Stack

FACES = 256
REQUESTS = 512


def aligned_faces() -> np.ndarray:
    recipe = Recipe(SPEC)
    out = []
    for name in lfw.identities():
        for path in lfw.photos(name)[1:]:
            face = recipe.aligned(np.asarray(lfw.crop(path)))
            if face is not None:
                out.append(face)
            if len(out) == FACES:
                return np.stack(out)
    return np.stack(out)


def in_process(faces: np.ndarray) -> list[Result]:
    net = network.build(SPEC, lfw.MOBILEFACENET)
    tensors = torch.from_numpy(faces)

    def call(batch: torch.Tensor):
        def run() -> int:
            with torch.inference_mode():
                net(batch)
            return len(batch)
        return run

    call(tensors[:8])()  # warm-up
    single = timed_loop("in-process, batch 1", [call(tensors[i % FACES][None]) for i in range(REQUESTS)])
    batched = timed_loop("in-process, batch 32", [call(tensors[i:i + 32]) for i in range(0, FACES, 32)] * 2)
    return [single, batched]


def served(faces: np.ndarray, url: str) -> list[Result]:
    client = triton.InferenceServerClient(url)

    def call(batch: np.ndarray):
        def run() -> int:
            tensor = triton.InferInput("faces", list(batch.shape), "UINT8")
            tensor.set_data_from_numpy(batch)
            client.infer(SPEC.name, [tensor])
            return len(batch)
        return run

    call(faces[:8])()
    results = []
    for concurrency in (1, 8, 32):
        calls = [call(faces[i % FACES][None]) for i in range(REQUESTS)]
        results.append(timed_loop(f"Triton, 1 crop/request, {concurrency} in flight", calls, concurrency))
    calls = [call(faces[i:i + 32]) for i in range(0, FACES, 32)] * 2
    results.append(timed_loop("Triton, 32 crops/request", calls, 1))
    return results


def main() -> None:
    faces = aligned_faces()
    local = in_process(faces)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), {"FACESEARCH_MODEL": SPEC.name, "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET)})
        try:
            stack.start(only=["embedder"])
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    # Model readiness: PyTriton loads models after the server is up.
                    ready = f"http://127.0.0.1:{stack.ports.embedder_http}/v2/models/{SPEC.name}/ready"
                    if httpx.get(ready).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            remote = served(faces, f"127.0.0.1:{stack.ports.embedder_grpc}")
        finally:
            stack.stop()
    best = max(local, key=lambda r: r.rate)
    print_table(f"Embedder ({SPEC.name}, {SPEC.height}x{SPEC.width}, CPU, {torch.get_num_threads()} threads)",
                local + remote, best, "crops")


if __name__ == "__main__":
    main()
