"""The crop embedder's throughput on the same real face crops, side by side:
the graph in process with PyTorch and with ONNX Runtime (the exported graph),
and served by Triton (dynamic batching) with each engine. The baseline is the
best in-process engine. The same for FaceNet's crop embedder (the default
model) with random weights, served through the embedder's own repository,
backend and tritonserver. Also what MTCNN cost per search/crops request
before the crop embedder (the detection step it replaced)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tritonclient.grpc as triton
from rich.table import Table

from bench import plots
from bench.common import Result, console, print_table, timed_loop
from devkit import lfw
from devkit.recipe import inputs
from devkit.stack import Stack, wait_triton_ready
from devkit.stackenv import free_port
from embedder import engines, graphs, launcher, repository
from embedder.config import Settings
from facesearch_common import triton as contract
from facesearch_common.specs import FACENET_VGGFACE2 as FACENET
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC
from facesearch_common.specs import ModelSpec

FACES = 256
REQUESTS = 512


Crops = dict[str, np.ndarray]


def real_crops() -> Crops:
    """FACES real crops of lfw-dev photos, as the gateway sends them."""
    crops = [np.asarray(lfw.crop(path)) for name in lfw.identities() for path in lfw.photos(name)[1:]]
    return inputs(crops[:FACES])


def take(crops: Crops, start: int, stop: int) -> Crops:
    return {name: value[start:stop] for name, value in crops.items()}


def count(crops: Crops) -> int:
    return len(crops[contract.SIZES])


@dataclass
class Sweep:
    """Each in-process engine at each batch size; the best row, and its calls
    over at least REQUESTS crops (what the served path answers per round)."""

    results: list[Result]
    best: Result
    best_calls: list[Callable[[], int]]


def in_process(spec: ModelSpec, weights: Path, faces: Crops, cache: Path) -> Sweep:
    results, calls_of = [], {}
    for label in ("torch", "onnxruntime"):
        # Spinning ONNX Runtime threads: nothing else shares the cores here
        # (the served engine does not spin: other models share its cores).
        engine = engines.build(label, spec, weights, lfw.YUNET, "cpu", cache, spin=True)

        def call(batch: Crops, engine=engine):
            def run() -> int:
                engine(batch)
                return count(batch)

            return run

        call(take(faces, 0, 8))()  # warm-up
        # Every batch size the served path may run, so the baseline is the
        # engine's best, wherever its sweet spot is.
        for size in (1, 4, 8, 16, 32):
            batches = [call(take(faces, i, i + size)) for i in range(0, count(faces), size)]
            result = timed_loop(f"in-process {label}, batch {size}", batches * 2)
            results.append(result)
            calls_of[result.name] = batches * max(1, REQUESTS // count(faces))
    best = max(results, key=lambda r: r.rate)
    return Sweep(results, best, calls_of[best.name])


def paired(name: str, baseline: Sweep, served_calls: list[Callable[[], int]], rounds: int = 8) -> None:
    """The best in-process row and the served path at 32 in flight, taken in
    turns, so that the machine's drift (15-25% between runs here) hits both
    alike: one ratio per round, and their median."""
    table = Table(title=f"{name}: {baseline.best.name} and served at 32 in flight, in turns")
    for column in ("round", "in-process crops/s", "served crops/s", "served / in-process"):
        table.add_column(column, justify="right")
    ratios = []
    baseline.best_calls[0]()  # warm-up
    for round_ in range(1, rounds + 1):
        local = timed_loop("in-process", baseline.best_calls)
        remote = timed_loop("served", served_calls, 32)
        ratios.append(remote.rate / local.rate)
        table.add_row(str(round_), f"{local.rate:.1f}", f"{remote.rate:.1f}", f"{ratios[-1]:.2f}x")
    table.add_row("median", "", "", f"{np.median(ratios):.2f}x")
    console.print(table)


def detection_cost(crops: list[np.ndarray]) -> list[Result]:
    """MTCNN on 160x160 canvases, as each search/crops probe costs: one at a
    time, and 32 at a time as Triton batches concurrent requests' crops."""
    from devkit.legacy import Detector, detection_input

    detector = Detector("cpu")
    canvases = [detection_input(c).pixels[None] for c in crops]

    def call(canvas):
        def run() -> int:
            detector.detect(canvas)
            return 1

        return run

    call(canvases[0])()
    batched = [np.concatenate(canvases[i : i + 32]) for i in range(0, len(canvases) - 31, 32)]

    def call_batch(batch):
        def run() -> int:
            detector.detect(batch)
            return len(batch)

        return run

    return [
        timed_loop("MTCNN in-process, 1 crop", [call(c) for c in canvases]),
        timed_loop("MTCNN in-process, 32 crops", [call_batch(b) for b in batched]),
    ]


def triton_call(client: triton.InferenceServerClient, batch: Crops, model: str = SPEC.name) -> Callable[[], int]:
    """One request of `batch` to the served crop embedder, for timed_loop."""

    def run() -> int:
        tensors = []
        for name, kind in ((contract.CROPS, "UINT8"), (contract.SIZES, "INT32")):
            tensors.append(triton.InferInput(name, list(batch[name].shape), kind))
            tensors[-1].set_data_from_numpy(np.ascontiguousarray(batch[name]))
        client.infer(model, tensors)
        return count(batch)

    return run


def served(
    faces: Crops, url: str, model: str = SPEC.name, baseline: Sweep | None = None, label: str = ""
) -> list[Result]:
    client = triton.InferenceServerClient(url)

    def call(batch: Crops) -> Callable[[], int]:
        return triton_call(client, batch, model)

    n = count(faces)
    call(take(faces, 0, 8))()
    results = []
    for concurrency in (1, 8, 32):
        calls = [call(take(faces, i % n, i % n + 1)) for i in range(REQUESTS)]
        results.append(timed_loop(f"Triton, 1 crop/request, {concurrency} in flight", calls, concurrency))
    # Many crops in one request: the API's most for one search (10), and 32.
    for size, concurrency in ((10, 1), (32, 1), (32, 4)):
        calls = [call(take(faces, i, i + size)) for i in range(0, n - size + 1, size)] * 2
        results.append(timed_loop(f"Triton, {size} crops/request, {concurrency} in flight", calls, concurrency))
    if baseline is not None:
        paired(f"{model} {label}".strip(), baseline, [call(take(faces, i % n, i % n + 1)) for i in range(REQUESTS)])
    return results


def served_with(
    engine: str, faces: Crops, baseline: Sweep | None = None, layout: tuple[int, int] | None = None
) -> list[Result]:
    """The embedder's tritonserver (the face detector beside the crop embedder, idle here),
    with its default instances or `layout` (instances, threads each)."""
    env = {**lfw.evaluation_model(), "EMBEDDER_ENGINE": engine}
    label = engine
    if layout:
        env.update(EMBEDDER_INSTANCES=str(layout[0]), EMBEDDER_THREADS=str(layout[1]))
        label = f"{engine}, {layout[0]}x{layout[1]} threads"
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), env).running(only=["embedder"]) as stack:
        wait_triton_ready(stack.ports.embedder_http)
        remote = served(faces, f"127.0.0.1:{stack.ports.embedder_grpc}", SPEC.name, baseline, f"({label})")
    return [dataclasses.replace(r, name=f"{r.name} ({label})") for r in remote]


def facenet() -> tuple[Sweep, list[Result]]:
    """InceptionResnetV1 (FaceNet's network) with random weights, whose
    speed does not depend on them (the real ones cannot be had here): in
    process with each engine at each batch size, and served the way the
    embedder serves FaceNet (its engine, instances and threads) by this
    project's repository, backend and tritonserver. Only the weights' sha256
    check, which random weights cannot pass, is left out."""
    from facenet_pytorch import InceptionResnetV1

    faces = take(real_crops(), 0, 64)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        torch.manual_seed(0)
        weights = tmp / "facenet-random.pt"
        torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
        local = in_process(FACENET, weights, faces, tmp / "onnx")
        return local, facenet_served({k: np.concatenate([v] * 4) for k, v in faces.items()}, weights, tmp, local)


def facenet_served(faces: Crops, weights: Path, tmp: Path, baseline: Sweep) -> list[Result]:
    settings = Settings()
    engine = graphs.choose("auto", "cpu", FACENET)
    onnx = engines.onnx_file(FACENET, weights, lfw.YUNET, tmp / "onnx") if engine == "onnxruntime" else None
    instances, threads = settings.face_instances()
    entry = repository.crop_entry(FACENET, engine, weights, lfw.YUNET, onnx, instances, threads)
    models = repository.write(
        tmp / "triton" / "models", [entry], settings.max_batch_size, settings.queue_delay_us(), gpu=False
    )
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    run = launcher.command(
        models, launcher.backends(tmp / "triton" / "backends"), "127.0.0.1", grpc_port, http_port, metrics_port
    )
    server = subprocess.Popen(run.argv, env=run.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_triton_ready(http_port)
        remote = served(faces, f"127.0.0.1:{grpc_port}", FACENET.name, baseline)
    finally:
        server.terminate()
        server.wait(30)
    return [dataclasses.replace(r, name=f"{r.name} ({engine}, {instances}x{threads} threads)") for r in remote]


def main() -> None:
    faces = real_crops()
    with tempfile.TemporaryDirectory() as cache:
        local = in_process(SPEC, lfw.MOBILEFACENET, faces, Path(cache))
        # The default layout (one single-threaded instance per core) and one
        # instance with every core.
        cores = len(os.sched_getaffinity(0))
        # The engine the embedder serves on CPU is the one taken in turns with
        # the best in-process row (the ratio the crop embedder is held to).
        served_engine = graphs.choose("auto", "cpu", SPEC)

        def baseline(engine: str) -> Sweep | None:
            return local if engine == served_engine else None

        remote = (
            served_with("onnxruntime", faces, baseline("onnxruntime"))
            + served_with("torch", faces, baseline("torch"))
            + served_with("torch", faces, layout=(1, cores))
        )
    best = local.best
    print_table(
        f"Crop embedder ({SPEC.name}, {SPEC.height}x{SPEC.width}, CPU, {torch.get_num_threads()} threads)",
        local.results + remote,
        best,
        "crops",
    )
    # The served rows share the cores with this client; the in-process rows do not.
    busiest = max(remote, key=lambda r: r.client_cores)
    print(f"benchmark client's own CPU on the served rows: at most {busiest.client_cores:.2f} cores ({busiest.name})")
    network, network_served = facenet()
    print_table(
        f"FaceNet's crop embedder (InceptionResnetV1, {FACENET.height}x{FACENET.width}, random weights)",
        network.results + network_served,
        network.best,
        "crops",
    )
    crops = [np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:100]]
    mtcnn = detection_cost(crops)
    print_table("What detection cost per probe before the crop embedder (MTCNN, 160x160)", mtcnn, best, "crops")
    path = plots.draw(
        "embedder_crops",
        "The crop embedder's crops/s by batch and engine (2 cores)",
        [
            by_batch(f"{SPEC.name}, real weights", local, remote),
            by_batch("FaceNet's, random weights", network, network_served),
        ],
    )
    console.print(f"plot: {path}")


def by_batch(title: str, local: Sweep, served: list[Result]) -> plots.Panel:
    """In-process engines as lines over the batch size, the served rows with
    32 requests in flight as levels."""
    points: dict[str, list[tuple[float, float]]] = {}
    for r in local.results:
        engine, _, size = r.name.removeprefix("in-process ").partition(", batch ")
        points.setdefault(f"in process, {engine}", []).append((float(size), r.rate))
    series: plots.Series = {label: ([x for x, _ in xy], [y for _, y in xy]) for label, xy in points.items()}
    levels = {f"served: {r.name.removeprefix('Triton, ')}": r.rate for r in served if "32 in flight" in r.name}
    return plots.Panel(f"batch size ({title})", "crops/s", series, logx=True, levels=levels)


if __name__ == "__main__":
    main()
