"""The engines that run the crop embedder: its input tensors by name in
(`facesearch_common.triton`: crops and sizes), its outputs by name out.

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

from . import export, network

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


def onnx_file(spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path) -> Path:
    """The exported graph for these exact weights, exported once and cached."""
    digest = hashlib.sha256(weights.read_bytes() + detector.read_bytes()).hexdigest()[:16]
    path = cache_dir / f"{spec.name}-crops-{digest}.onnx"
    if not path.is_file():
        partial = path.with_suffix(".partial")
        export.export_onnx(network.build(spec, weights, detector), partial)
        partial.rename(path)  # a crash mid-export never leaves a broken cache
    return path


def onnx_engine(
    spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path, threads: int = 0, spin: bool = False
) -> Engine:
    return onnx_session(onnx_file(spec, weights, detector, cache_dir), threads, spin)


def onnx_session(path: Path, threads: int = 0, spin: bool = False) -> Engine:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Idle ONNX Runtime threads must not spin where the detector shares the
    # cores (the embedder); alone in a process (a benchmark) they may.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(inputs: Tensors) -> Tensors:
        feed = {name: np.ascontiguousarray(inputs[name]) for name in export.INPUTS}
        return dict(zip(export.OUTPUTS, session.run(list(export.OUTPUTS), feed), strict=True))

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
