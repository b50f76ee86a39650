"""Writes a Triton model repository for the face model that the official
Triton image serves (ONNX Runtime backend):

    python -m embedder.export --out model_repository [--model mobilefacenet-casia --weights FILE]

    model_repository/<model>/config.pbtxt
    model_repository/<model>/1/model.onnx

The ONNX graph is the served network itself (embedder/network.py): uint8
HxWx3 faces in, normalised inside the model, L2-normalised float32
embeddings out, any batch size. The config turns on dynamic batching and puts
instances on the GPU where there is one (KIND_AUTO), else on the CPU.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from facesearch_common import triton
from facesearch_common.specs import DEFAULT_MODEL, ModelSpec, get_spec

from . import network, repository, weights

INPUT, OUTPUT = triton.FACE_INPUT, triton.FACE_OUTPUT
OPSET = 17


def config_pbtxt(spec: ModelSpec, max_batch: int, queue_delay_us: int, instances: int) -> str:
    # On the GPU where Triton finds one, else on the CPU.
    config = repository.model_config(
        repository.face_model(spec, instances), max_batch, queue_delay_us, mc.ModelInstanceGroup.KIND_AUTO
    )
    config.platform = "onnxruntime_onnx"
    header = f"# Written by `python -m embedder.export`: {spec.name}, uint8 faces in, unit embeddings out.\n"
    return header + text_format.MessageToString(config)


def export_onnx(model: torch.nn.Module, spec: ModelSpec, path: Path) -> None:
    example = torch.zeros(2, spec.height, spec.width, 3, dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of dynamo,
        # which needs onnxscript; this graph is plain and exports the same.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def export(
    spec: ModelSpec, weights_path: Path, out: Path, max_batch: int = 64, queue_delay_us: int = 2000, instances: int = 1
) -> Path:
    """The repository entry for `spec`; returns the model directory."""
    model = network.build(spec, weights_path)
    directory = out / spec.name
    export_onnx(model, spec, directory / "1" / "model.onnx")
    (directory / "config.pbtxt").write_text(config_pbtxt(spec, max_batch, queue_delay_us, instances))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the model repository to write into")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--weights", type=Path, help="weights file [cache, then download]")
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    spec = get_spec(args.model)
    path = weights.resolve(spec, args.weights, args.data_dir / "models")
    directory = export(spec, path, args.out, args.max_batch, args.queue_delay_us, args.instances)
    print(f"wrote {directory}/config.pbtxt and {directory}/1/model.onnx")


if __name__ == "__main__":
    main()
