"""What each served model computes, apart from Triton's plumbing: built from
its config's parameters, run over the requests of one dynamic batch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch_common.specs import get_spec

# One batch of the model's input tensors by name in, its outputs by name out.
Tensors = dict[str, npt.NDArray[Any]]
Run = Callable[[Tensors], Tensors]


def build(parameters: dict[str, str], device: str) -> Run:
    threads = int(parameters.get("threads") or 0)
    # ONNX Runtime's graphs load without PyTorch (graphs.py): a stub that
    # serves one starts seconds sooner.
    if parameters.get("engine") == "onnxruntime" or (parameters["kind"] == "photos" and device == "cpu"):
        from .graphs import onnx_session

        return onnx_session(Path(parameters["onnx"]), threads)
    import torch

    from . import engines, graphs

    if threads:
        torch.set_num_threads(threads)
    if parameters["kind"] == "photos":
        return engines.torch_photos(Path(parameters["detector"]), device)
    spec = get_spec(parameters["spec"])
    precision = graphs.precision(parameters.get("precision", "auto"), device)
    return engines.torch_engine(spec, Path(parameters["weights"]), Path(parameters["detector"]), device, precision)


def run_batch(run: Run, requests: list[Tensors]) -> list[Tensors]:
    """One answer per request. Requests whose tensors have the same shapes
    run as one batch; Triton only batches equal shapes, but a model must not
    rely on it."""
    answers: list[Tensors | None] = [None] * len(requests)
    by_shape: dict[tuple[tuple[int, ...], ...], list[int]] = {}
    for i, request in enumerate(requests):
        by_shape.setdefault(tuple(a.shape[1:] for a in request.values()), []).append(i)
    for members in by_shape.values():
        batch = {name: np.concatenate([requests[i][name] for i in members]) for name in requests[members[0]]}
        outputs = run(batch)
        start = 0
        for i in members:
            n = len(next(iter(requests[i].values())))
            answers[i] = {name: value[start : start + n] for name, value in outputs.items()}
            start += n
    return answers  # type: ignore[return-value]
