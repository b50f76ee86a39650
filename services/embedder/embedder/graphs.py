"""The served graphs as files, and ONNX Runtime running them. Nothing here
imports PyTorch: an embedder whose graphs are cached starts, and each of its
Triton stubs loads, without it (PyTorch's import is 5 s of CPU on two cores;
an embedder killed and restarted is back that much sooner per process).
engines.py exports a graph that is not cached yet, with PyTorch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch_common.specs import ModelSpec

Tensors = dict[str, npt.NDArray[Any]]
Engine = Callable[[Tensors], Tensors]
ENGINES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16")  # network.py maps each to its torch dtype
HERE = Path(__file__).resolve().parent
# The code that defines the exported graphs: changing it makes new graphs,
# so it is part of each cached file's name, as the weights are.
GRAPH_SOURCES = tuple(
    HERE / f"{name}.py" for name in ("crops", "export", "face", "mobilefacenet", "network", "photos", "yunet")
)


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
    if setting not in PRECISIONS:
        raise ValueError(f"EMBEDDER_PRECISION must be auto or one of {', '.join(PRECISIONS)}, got {setting!r}")
    return setting


def cached(path: Path, write: Callable[[Path], None]) -> Path:
    """`path`, written by `write` once; a crash mid-export never leaves a broken cache."""
    if not path.is_file():
        partial = path.with_suffix(".partial")
        write(partial)
        partial.rename(path)
    return path


def digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def crops_path(spec: ModelSpec, weights: Path, detector: Path, cache_dir: Path) -> Path:
    """Where the crop embedder's graph for these exact weights is cached.
    The spec's recipe (input, normalisation, alignment) is part of the name:
    a model file can change it without changing its network."""
    shape = (spec.height, spec.width, spec.dim)
    recipe = repr((*shape, spec.alignment, spec.template, spec.margin, spec.channels, spec.pixel_mean, spec.pixel_std))
    key = digest(weights, detector, *GRAPH_SOURCES) + hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return cache_dir / f"{spec.name}-crops-{key}.onnx"


def photos_path(detector: Path, cache_dir: Path) -> Path:
    """Where the face detector's graph for these exact weights is cached."""
    return cache_dir / f"face-detector-{digest(detector, *GRAPH_SOURCES)}.onnx"


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
