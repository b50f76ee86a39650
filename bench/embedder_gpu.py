"""The crop embedder's PyTorch engine on a CUDA device (YuNet, R-Net and O-Net,
the warp in fp32; the face network in fp32, fp16 or bf16):
crops/s and p50/p99 at every batch size the served path may run (Triton's
largest batch is EMBEDDER_MAX_BATCH, 64) and beyond, for MobileFaceNet (real
weights, real lfw-dev crops) and FaceNet's InceptionResnetV1 (random
weights: the real ones cannot be had here, and speed does not depend on
them). The baseline is fp32 on the same GPU, the engine the embedder ran
there before. Each call is what the served model does per batch: uint8
crops on the canvas from host memory to the device, the graph, its outputs
back to host memory.

Accuracy holds or not on real faces: the cosine between each face's
half-precision and fp32 embeddings, whether each face's nearest neighbour
among the others is the same face as in fp32, and leave-one-out rank-1 by
identity in each precision. Also MTCNN's cost per search/crops probe on the
device against the CPU.

    python -m bench.embedder_gpu [--device cuda:0] [--identities 60] [--round-crops 2048]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from bench.common import Result, console, print_table, timed_loop
from devkit import lfw
from devkit.recipe import inputs
from embedder import engines, network
from facesearch_common import triton
from facesearch_common.specs import FACENET_VGGFACE2 as FACENET
from facesearch_common.specs import MOBILEFACENET_CASIA as MOBILEFACENET
from facesearch_common.specs import ModelSpec

BATCHES = (1, 8, 32, 64, 256)


Crops = dict[str, np.ndarray]


def resized(crops: Crops, size: int) -> Crops:
    return {k: np.ascontiguousarray(np.resize(v, (size, *v.shape[1:]))) for k, v in crops.items()}


def real_crops(identities: int) -> tuple[Crops, np.ndarray]:
    names = lfw.identities()[:identities]
    found = [(i, np.asarray(lfw.crop(p))) for i, n in enumerate(names) for p in lfw.photos(n)]
    return inputs([c for _, c in found]), np.array([i for i, _ in found])


def speed(spec: ModelSpec, weights: Path, crops: Crops, device: str, round_crops: int) -> list[Result]:
    results = []
    for precision in network.PRECISIONS:
        engine = engines.torch_engine(spec, weights, lfw.YUNET, device, precision)
        for size in BATCHES:
            batch = resized(crops, size)

            def call(batch: Crops = batch, engine=engine, size: int = size) -> int:
                engine(batch)  # returns host memory: the device work is done
                return size

            for _ in range(3):
                call()  # warm-up: cuDNN picks its kernels per shape
            calls = max(8, round_crops // size)
            results.append(timed_loop(f"{precision}, batch {size}", [call] * calls))
    return results


def agreement(spec: ModelSpec, weights: Path, crops: Crops, labels: np.ndarray, device: str) -> Table:
    def embed(precision: str) -> np.ndarray:
        engine = engines.torch_engine(spec, weights, lfw.YUNET, device, precision)
        n = len(labels)
        parts = [engine({k: v[i : i + 64] for k, v in crops.items()})[triton.EMBEDDINGS] for i in range(0, n, 64)]
        return np.concatenate(parts)

    def nearest(e: np.ndarray) -> np.ndarray:
        scores = e @ e.T
        np.fill_diagonal(scores, -np.inf)
        return scores.argmax(axis=1)

    reference = embed("fp32")
    table = Table(
        title=f"{spec.name} on {device}: each precision against fp32, {len(labels)} real crops, "
        f"{len(set(labels.tolist()))} identities"
    )
    for column in ("precision", "cosine to fp32, min", "mean", "same nearest face as fp32", "rank-1 by identity"):
        table.add_column(column, justify="left" if column == "precision" else "right")
    for precision in network.PRECISIONS:
        e = embed(precision)
        cosine = (e * reference).sum(axis=1)
        same = np.mean(nearest(e) == nearest(reference))
        rank1 = np.mean(labels[nearest(e)] == labels)
        table.add_row(precision, f"{cosine.min():.6f}", f"{cosine.mean():.6f}", f"{same:.4f}", f"{rank1:.4f}")
    return table


def detection(device: str, crops: list[np.ndarray]) -> list[Result]:
    """MTCNN on the 160x160 canvas each search/crops probe costs, one at a
    time and 32 at a time (Triton batches concurrent requests' crops)."""
    from devkit.legacy import Detector, detection_input

    canvases = [detection_input(c).pixels[None] for c in crops]
    batches = [np.concatenate(canvases[i : i + 32]) for i in range(0, len(canvases) - 31, 32)]
    results = []
    for where in ("cpu", device):
        detector = Detector(where)

        def call(images: np.ndarray, detector=detector):
            def run() -> int:
                detector.detect(images)
                return len(images)

            return run

        call(canvases[0])()
        call(batches[0])()
        results += [
            timed_loop(f"MTCNN on {where}, 1 crop", [call(c) for c in canvases]),
            timed_loop(f"MTCNN on {where}, 32 crops", [call(b) for b in batches]),
        ]
    return results


def facenet_weights(directory: Path) -> Path:
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    path = directory / "facenet-random.pt"
    torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), path)
    return path


def main(device: str, identities: int, round_crops: int) -> None:
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
    console.print(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    crops, labels = real_crops(identities)
    mobile = speed(MOBILEFACENET, lfw.MOBILEFACENET, crops, device, round_crops)
    print_table(
        f"{MOBILEFACENET.name} ({MOBILEFACENET.height}x{MOBILEFACENET.width}), PyTorch on {name}",
        mobile,
        max((r for r in mobile if r.name.startswith("fp32")), key=lambda r: r.rate),
        "crops",
    )
    console.print(agreement(MOBILEFACENET, lfw.MOBILEFACENET, crops, labels, device))
    with tempfile.TemporaryDirectory() as tmp:
        weights = facenet_weights(Path(tmp))
        facenet = speed(FACENET, weights, crops, device, round_crops)
        print_table(
            f"FaceNet's network (InceptionResnetV1, {FACENET.height}x{FACENET.width}, random weights), "
            f"PyTorch on {name}",
            facenet,
            max((r for r in facenet if r.name.startswith("fp32")), key=lambda r: r.rate),
            "crops",
        )
    mtcnn = detection(device, [np.asarray(lfw.crop(lfw.photos(n)[1])) for n in lfw.identities()[:64]])
    print_table("MTCNN per search/crops probe (160x160 canvas)", mtcnn, mtcnn[1], "crops")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--identities", type=int, default=60, help="lfw-dev identities whose photos are the real faces")
    parser.add_argument("--round-crops", type=int, default=2048, help="crops per timed row")
    args = parser.parse_args()
    main(args.device, args.identities, args.round_crops)
