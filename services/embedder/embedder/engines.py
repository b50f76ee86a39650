"""The engines that run the served graphs, the crop embedder and the face
detector: input tensors by name in (`facesearch_common.triton`), outputs by
name out.

On CPU each model runs on the engine measured faster for it on the served
path (its spec's `cpu_engine`). ONNX Runtime runs the graph that
embedder.export writes (checked to 1e-4 against PyTorch). On CUDA, PyTorch
runs it, its face network in fp16 unless EMBEDDER_PRECISION says otherwise
(measured on an H200: bench/RESULTS.md). EMBEDDER_ENGINE chooses explicitly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from facesearch_common import triton
from facesearch_common.specs import ModelSpec

from . import export, network, photos, yunet
from .graphs import Engine, Tensors, cached, choose, crops_path, onnx_session, photos_path


def torch_engine(spec: ModelSpec, weights: Path, detector: Path, device: str, precision: str = "fp32") -> Engine:
    net = network.build(spec, weights, detector, device, precision)

    def run(inputs: Tensors) -> Tensors:
        with torch.inference_mode():
            # Triton hands over read-only buffers; torch wants its own memory.
            outputs = net(
                torch.tensor(inputs[triton.CROPS], device=device), torch.tensor(inputs[triton.SIZES], device=device)
            )
        return {name: value.cpu().numpy() for name, value in zip(export.OUTPUTS, outputs, strict=True)}

    return run


def onnx_file(spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path) -> Path:
    """The crop embedder's exported graph for these exact weights (exported once)."""
    return cached(
        crops_path(spec, weights, detector, cache_dir),
        lambda path: export.export_onnx(network.build(spec, weights, detector), path),
    )


def photos_onnx_file(detector: Path, cache_dir: Path) -> Path:
    """The face detector's exported graph for these exact weights (exported once)."""
    return cached(photos_path(detector, cache_dir), lambda path: export.export_photos_onnx(detector, path))


def onnx_engine(
    spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path, threads: int = 0, spin: bool = False
) -> Engine:
    return onnx_session(onnx_file(spec, weights, detector, cache_dir), threads, spin)


def torch_photos(detector: Path, device: str) -> Engine:
    """The face detector in PyTorch (embedder/photos.py)."""
    net = photos.PhotoDetector(yunet.load_onnx(detector)).eval().to(device)

    def run(inputs: Tensors) -> Tensors:
        with torch.inference_mode():
            outputs = net(torch.tensor(inputs[triton.DETECTOR_INPUT], device=device))
        return {name: value.cpu().numpy() for name, value in zip(triton.DETECTOR_OUTPUTS, outputs, strict=True)}

    return run


def build(
    engine: str,
    spec: ModelSpec,
    weights: Path,
    detector: Path,
    device: str,
    cache_dir: Path,
    threads: int = 0,
    spin: bool = False,
    precision: str = "fp32",
) -> Engine:
    if choose(engine, device, spec) == "onnxruntime":
        return onnx_engine(spec, weights, detector, cache_dir, threads, spin)
    return torch_engine(spec, weights, detector, device, precision)
