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

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from facesearch_common import triton
from facesearch_common.specs import ModelSpec

from . import crops, export, face, mobilefacenet, network, photos, yunet

# The code that defines the exported graphs: changing it makes new graphs,
# so it is part of each cached file's name, as the weights are.
GRAPH_SOURCES = tuple(Path(str(m.__file__)) for m in (crops, export, face, mobilefacenet, network, photos, yunet))

Tensors = dict[str, npt.NDArray[Any]]
Engine = Callable[[Tensors], Tensors]
ENGINES = ("auto", "torch", "onnxruntime")


def choose(engine: str, device: str, spec: ModelSpec) -> str:
    if engine not in ENGINES:
        raise ValueError(f"EMBEDDER_ENGINE must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return spec.cpu_engine if device == "cpu" else "torch"
    return engine


def precision(setting: str, device: str) -> str:
    """EMBEDDER_PRECISION: `auto` is fp16 on CUDA (on an H200 the same
    nearest neighbours as fp32 and up to 1.5x faster, bench/RESULTS.md) and fp32 on
    the CPU, where fp16 is ten times slower and bf16, faster on CPUs with
    AVX-512 BF16, moved 4 of 300 nearest neighbours (on the GPU)."""
    if setting == "auto":
        return "fp32" if device == "cpu" else "fp16"
    if setting not in network.PRECISIONS:
        raise ValueError(f"EMBEDDER_PRECISION must be auto or one of {', '.join(network.PRECISIONS)}, got {setting!r}")
    return setting


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


def cached(path: Path, write: Callable[[Path], None]) -> Path:
    """`path`, written by `write` once; a crash mid-export never leaves a broken cache."""
    if not path.is_file():
        partial = path.with_suffix(".partial")
        write(partial)
        partial.rename(path)
    return path


def digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def onnx_file(spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path) -> Path:
    """The crop embedder's exported graph for these exact weights."""
    return cached(
        cache_dir / f"{spec.name}-crops-{digest(weights, detector, *GRAPH_SOURCES)}.onnx",
        lambda path: export.export_onnx(network.build(spec, weights, detector), path),
    )


def photos_onnx_file(detector: Path, cache_dir: Path) -> Path:
    """The face detector's exported graph for these exact weights."""
    return cached(
        cache_dir / f"face-detector-{digest(detector, *GRAPH_SOURCES)}.onnx",
        lambda path: export.export_photos_onnx(detector, path),
    )


def onnx_engine(
    spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path, threads: int = 0, spin: bool = False
) -> Engine:
    return onnx_session(onnx_file(spec, weights, detector, cache_dir), threads, spin)


def onnx_session(path: Path, threads: int = 0, spin: bool = False) -> Engine:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Idle ONNX Runtime threads must not spin where other models share the
    # cores (the embedder); alone in a process (a benchmark) they may.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    names = [o.name for o in session.get_outputs()]
    feeds = [i.name for i in session.get_inputs()]

    def run(inputs: Tensors) -> Tensors:
        feed = {name: np.ascontiguousarray(inputs[name]) for name in feeds}
        return dict(zip(names, session.run(names, feed), strict=True))

    return run


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
