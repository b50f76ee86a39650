"""Embedder throughput on the same aligned faces, side by side: the model
in-process with PyTorch and with ONNX Runtime (the exported graph), and served
by Triton (dynamic batching) with each engine. The baseline is the best
in-process engine. Also MTCNN's cost per search/crops request."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import tritonclient.grpc as triton

from bench.common import Result, print_table, timed_loop
from embedder import engines
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


def in_process(faces: np.ndarray, cache: Path) -> list[Result]:
    results = []
    for label in ("torch", "onnxruntime"):
        engine = engines.build(label, SPEC, lfw.MOBILEFACENET, "cpu", cache)

        def call(batch: np.ndarray):
            def run() -> int:
                engine(batch)
                return len(batch)
            return run

        call(faces[:8])()  # warm-up
        # Every batch size the served path may run, so the baseline is the
        # engine's best, wherever its sweet spot is.
        for size in (1, 4, 8, 16, 32):
            batches = [call(faces[i:i + size]) for i in range(0, FACES, size)] * 2
            results.append(timed_loop(f"in-process {label}, batch {size}", batches))
    return results


def detection_cost(crops: list[np.ndarray]) -> list[Result]:
    """MTCNN on 160x160 canvases, as each search/crops probe costs: one at a
    time, and 32 at a time as Triton batches concurrent requests' crops."""
    from embedder.detector import Detector
    from gateway.faces import detection_input

    detector = Detector("cpu")
    canvases = [detection_input(c).pixels[None] for c in crops]

    def call(canvas):
        def run() -> int:
            detector.detect(canvas)
            return 1
        return run

    call(canvases[0])()
    batched = [np.concatenate(canvases[i:i + 32]) for i in range(0, len(canvases) - 31, 32)]

    def call_batch(batch):
        def run() -> int:
            detector.detect(batch)
            return len(batch)
        return run

    return [timed_loop("MTCNN in-process, 1 crop", [call(c) for c in canvases]),
            timed_loop("MTCNN in-process, 32 crops", [call_batch(b) for b in batched])]


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
    # Many crops in one request: the API's most for one search (10), and 32.
    for size, concurrency in ((10, 1), (32, 1), (32, 4)):
        calls = [call(faces[i:i + size]) for i in range(0, FACES - size + 1, size)] * 2
        results.append(timed_loop(f"Triton, {size} crops/request, {concurrency} in flight", calls, concurrency))
    return results


def served_with(engine: str, faces: np.ndarray) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), {"FACESEARCH_MODEL": SPEC.name, "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET),
                                  "EMBEDDER_ENGINE": engine})
        try:
            stack.start(only=["embedder"])
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    # Ready only once every model has loaded (strict readiness).
                    ready = f"http://127.0.0.1:{stack.ports.embedder_http}/v2/health/ready"
                    if httpx.get(ready).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            remote = served(faces, f"127.0.0.1:{stack.ports.embedder_grpc}")
        finally:
            stack.stop()
    return [dataclasses.replace(r, name=f"{r.name} ({engine})") for r in remote]


def facenet_architecture() -> list[Result]:
    """InceptionResnetV1 (FaceNet's network) with random weights: the speed of
    each engine does not depend on the weights, which cannot be had here."""
    from facenet_pytorch import InceptionResnetV1

    from embedder import export
    from embedder.network import FaceEmbedder
    from facesearch_common.specs import FACENET_VGGFACE2 as FACENET

    net = FaceEmbedder(InceptionResnetV1(pretrained=None, classify=False)).eval()
    faces = np.random.default_rng(0).integers(0, 256, (32, FACENET.height, FACENET.width, 3), dtype=np.uint8)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "facenet.onnx"
        export.export_onnx(net, FACENET, path)
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = {"torch": lambda b: net(torch.from_numpy(b)),
               "onnxruntime": lambda b: session.run([export.OUTPUT], {export.INPUT: b})}
        for label, engine in run.items():
            def call(batch):
                def go() -> int:
                    with torch.inference_mode():
                        engine(batch)
                    return len(batch)
                return go
            call(faces[:2])()
            results.append(timed_loop(f"InceptionResnetV1 {label}, batch 1", [call(faces[i][None]) for i in range(32)]))
            results.append(timed_loop(f"InceptionResnetV1 {label}, batch 32", [call(faces)] * 4))
    return results


def main() -> None:
    faces = aligned_faces()
    with tempfile.TemporaryDirectory() as cache:
        local = in_process(faces, Path(cache))
    remote = served_with("onnxruntime", faces) + served_with("torch", faces)
    best = max(local, key=lambda r: r.rate)
    print_table(f"Embedder ({SPEC.name}, {SPEC.height}x{SPEC.width}, CPU, {torch.get_num_threads()} threads)",
                local + remote, best, "crops")
    # The served rows share the cores with this client; the in-process rows do not.
    busiest = max(remote, key=lambda r: r.client_cores)
    print(f"benchmark client's own CPU on the served rows: at most {busiest.client_cores:.2f} cores ({busiest.name})")
    facenet = facenet_architecture()
    print_table("FaceNet's network (InceptionResnetV1, 160x160, random weights): engine speed only",
                facenet, facenet[1], "crops")
    crops = [np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:100]]
    mtcnn = detection_cost(crops)
    print_table("Detection per search/crops probe (MTCNN on the 160x160 canvas)", mtcnn, best, "crops")


if __name__ == "__main__":
    main()
