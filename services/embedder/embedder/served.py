"""What each served model computes, apart from Triton's plumbing: built from
its config's parameters, run over the requests of one dynamic batch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch_common import triton
from facesearch_common.specs import get_spec

# One batch of one input tensor in, the model's output tensors by name out.
Run = Callable[[npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]


def build(parameters: dict[str, str], device: str) -> Run:
    # OpenMP reads its wait policy once, when torch loads it: before any import.
    if parameters.get("omp_wait_policy"):
        os.environ["OMP_WAIT_POLICY"] = parameters["omp_wait_policy"]
    threads = int(parameters.get("threads") or 0)
    if threads:
        import torch

        torch.set_num_threads(threads)
    if parameters["kind"] == "detector":
        from .detector import Detector

        return Detector(device).detect
    from . import engines

    spec = get_spec(parameters["spec"])
    if parameters["engine"] == "onnxruntime":
        engine = engines.onnx_session(Path(parameters["onnx"]), threads)
    else:
        engine = engines.torch_engine(
            spec, Path(parameters["weights"]), device, engines.precision(parameters.get("precision", "auto"), device)
        )
    return lambda faces: {triton.FACE_OUTPUT: engine(faces)}


def run_batch(run: Run, arrays: list[npt.NDArray[Any]]) -> list[dict[str, npt.NDArray[Any]]]:
    """One answer per request. Requests of one shape run as one batch; Triton
    only batches equal shapes, but a model must not rely on it."""
    answers: list[dict[str, npt.NDArray[Any]] | None] = [None] * len(arrays)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, array in enumerate(arrays):
        by_shape.setdefault(array.shape[1:], []).append(i)
    for members in by_shape.values():
        outputs = run(np.concatenate([arrays[i] for i in members]))
        start = 0
        for i in members:
            n = len(arrays[i])
            answers[i] = {name: value[start : start + n] for name, value in outputs.items()}
            start += n
    return answers  # type: ignore[return-value]
