"""The Triton model repository the embedder serves.

Each served graph is a Python-backend model whose model.py is this
package's `backend.TritonPythonModel`: Triton runs every model instance in
its own stub process and hands it dynamic batches through shared memory, with
no proxy process in between. Everything a model needs to build itself
travels in its config's `parameters`, so the repository is the whole truth
of what is served.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from facesearch_common import triton
from facesearch_common.specs import ModelSpec

MODEL_PY = (
    "# Written by embedder.server: the model is embedder/backend.py.\n"
    "from embedder.backend import TritonPythonModel  # noqa: F401\n"
)


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: int  # model_config_pb2.DataType
    dims: tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    """One served model: its tensors (batch dimension implied) and how to build it."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    instances: int = 1
    # Batch sizes the dynamic batcher aims for (its largest it can fill).
    preferred_batch: tuple[int, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)


# On CPU a face model runs fastest per crop at batches of 4 to 16 and slower
# beyond, where activations outgrow the caches (MobileFaceNet, 2 threads:
# 253 crops/s at 4, 243 at 16, 184 at 32, 108 at 64), so the batcher sends
# batches of at most 16 while any instance is free.
CPU_PREFERRED_BATCH = (4, 8, 16)


def crop_model(spec: ModelSpec, instances: int = 1) -> Entry:
    """The crop embedder as any Triton sees it (`facesearch_common.triton`)."""
    side = triton.CANVAS_SIDE
    return Entry(
        name=spec.name,
        inputs=(
            Tensor(triton.CROPS, mc.TYPE_UINT8, (side, side, 3)),
            Tensor(triton.SIZES, mc.TYPE_INT32, (2,)),
        ),
        outputs=(
            Tensor(triton.EMBEDDINGS, mc.TYPE_FP32, (spec.dim,)),
            Tensor(triton.SCORES, mc.TYPE_FP32, (1,)),
            Tensor(triton.BOXES, mc.TYPE_FP32, (4,)),
            Tensor(triton.LANDMARKS, mc.TYPE_FP32, (5, 2)),
        ),
        instances=instances,
    )


def crop_entry(
    spec: ModelSpec,
    engine: str,
    weights: Path,
    detector: Path,
    onnx: Path | None,
    instances: int,
    threads: int,
    gpu: bool = False,
    precision: str = "auto",
) -> Entry:
    """The crop embedder served here, with what its Python-backend instance builds itself from."""
    return dataclasses.replace(
        crop_model(spec, instances),
        preferred_batch=() if gpu else CPU_PREFERRED_BATCH,
        parameters={
            "kind": "crops",
            "spec": spec.name,
            "engine": engine,
            "weights": str(weights),
            "detector": str(detector),
            "onnx": str(onnx or ""),
            "threads": str(threads),
            "precision": precision,
        },
    )


def photo_model(instances: int = 1) -> Entry:
    """The face detector for whole photos as any Triton sees it (`facesearch_common.triton`)."""
    side, k = triton.PHOTO_SIDE, triton.MAX_FACES
    return Entry(
        name=triton.DETECTOR_MODEL,
        inputs=(Tensor(triton.DETECTOR_INPUT, mc.TYPE_UINT8, (side, side, 3)),),
        outputs=(
            Tensor(triton.BOXES, mc.TYPE_FP32, (k, 4)),
            Tensor(triton.SCORES, mc.TYPE_FP32, (k,)),
            Tensor(triton.LANDMARKS, mc.TYPE_FP32, (k, 5, 2)),
        ),
        instances=instances,
    )


def photo_entry(detector: Path, onnx: Path | None, instances: int, threads: int) -> Entry:
    """The face detector served here: ONNX Runtime on its exported graph on
    the CPU, PyTorch on CUDA."""
    return dataclasses.replace(
        photo_model(instances),
        parameters={"kind": "photos", "detector": str(detector), "onnx": str(onnx or ""), "threads": str(threads)},
    )


def model_config(entry: Entry, max_batch: int, delay_us: int, kind: int) -> mc.ModelConfig:
    """Tensors, dynamic batching and instances; the caller names the backend."""

    def tensors(message: Any, specs: tuple[Tensor, ...]) -> list[Any]:  # mc is untyped
        return [message(name=t.name, data_type=t.dtype, dims=list(t.dims)) for t in specs]

    return mc.ModelConfig(
        name=entry.name,
        max_batch_size=max_batch,
        input=tensors(mc.ModelInput, entry.inputs),
        output=tensors(mc.ModelOutput, entry.outputs),
        dynamic_batching=mc.ModelDynamicBatching(
            max_queue_delay_microseconds=delay_us, preferred_batch_size=list(entry.preferred_batch)
        ),
        instance_group=[mc.ModelInstanceGroup(count=entry.instances, kind=kind)],
        parameters={k: mc.ModelParameter(string_value=v) for k, v in entry.parameters.items()},
    )


def config(entry: Entry, max_batch: int, delay_us: int, gpu: bool) -> mc.ModelConfig:
    kind = mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU
    served = model_config(entry, max_batch, delay_us, kind)
    served.backend = "python"
    return served


def write(root: Path, entries: list[Entry], max_batch: int, delay_us: int, gpu: bool) -> Path:
    """Writes the repository at `root` afresh (a model left from an earlier
    start must not be served); returns it."""
    shutil.rmtree(root, ignore_errors=True)
    for entry in entries:
        directory = root / entry.name
        (directory / "1").mkdir(parents=True, exist_ok=True)
        (directory / "1" / "model.py").write_text(MODEL_PY)
        text = text_format.MessageToString(config(entry, max_batch, delay_us, gpu))
        (directory / "config.pbtxt").write_text(text)
    return root
