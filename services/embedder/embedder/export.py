"""Writes the Triton model repository that the official Triton image serves
(ONNX Runtime backend), with no Python backend anywhere:

    python -m embedder.export --out model_repository [--model mobilefacenet-casia --weights FILE]
                              [--detector-weights FILE]

    model_repository/<model>/config.pbtxt, 1/model.onnx        the crop embedder
    model_repository/face-detector/config.pbtxt, 1/model.onnx  faces in whole photos

The crop embedder is one graph (embedder/crops.py): uint8 crops on the
canvas and their sizes in; embeddings, face scores, boxes and landmarks out
(`facesearch_common.triton`), any batch size. One graph rather than a Triton
ensemble of the detector, the landmark stages and the face network: one
request, one batch, no intermediate tensors between models, and the same
file on ONNX Runtime here and on the official image. The face detector
(embedder/photos.py) is a graph of its own, since a photo's faces are cut
and sent back as crops by the gateway. Each config turns on dynamic
batching and puts instances on the GPU where there is one (KIND_AUTO), else
on the CPU; on a GPU ONNX Runtime hands the graph to TensorRT in fp16
(`--gpu-fp16`, the default).
"""

from __future__ import annotations

import argparse
import copy
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from google.protobuf import text_format
from torch import nn
from tritonclient.grpc import model_config_pb2 as mc

from facesearch_common import triton
from facesearch_common.specs import DEFAULT_MODEL, YUNET, ModelSpec, get_spec, model_file_text, sha256_of

from . import network, photos, repository, weights, yunet

INPUTS = (triton.CROPS, triton.SIZES)
OUTPUTS = (triton.EMBEDDINGS, triton.SCORES, triton.BOXES, triton.LANDMARKS)
# GridSample, which the alignment's warp needs, is in ONNX from opset 16.
OPSET = 17
# A model file's network: normalised float faces [N, 3, H, W] in, embeddings [N, D] out.
NETWORK_INPUT, NETWORK_OUTPUT = "faces", "embeddings"


def config_pbtxt(entry: repository.Entry, what: str, max_batch: int, queue_delay_us: int, gpu_fp16: bool = True) -> str:
    # On the GPU where Triton finds one, else on the CPU.
    config = repository.model_config(entry, max_batch, queue_delay_us, mc.ModelInstanceGroup.KIND_AUTO)
    config.platform = "onnxruntime_onnx"
    if gpu_fp16:
        tensorrt = config.optimization.execution_accelerators.gpu_execution_accelerator.add()
        tensorrt.name = "tensorrt"
        tensorrt.parameters["precision_mode"] = "FP16"
    return f"# Written by `python -m embedder.export`: {what}.\n" + text_format.MessageToString(config)


class FusablePReLU(nn.Module):
    """PReLU spelt a*x + (1-a)*relu(x), the same function. ONNX Runtime's CPU
    PRelu is a plain broadcast kernel outside its blocked (NCHWc) layout, so
    each one also costs two layout reorders; spelt this way, the product and
    the sum fuse into the convolution before them. The crop embedder for
    MobileFaceNet on one thread: 11.9 ms a crop with PRelu, 7.3 without."""

    slope: torch.Tensor

    def __init__(self, prelu: nn.PReLU):
        super().__init__()
        self.register_buffer("slope", prelu.weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope = self.slope.reshape((1, -1) + (1,) * (x.dim() - 2))  # per channel, as nn.PReLU
        return x * slope + torch.relu(x) * (1 - slope)


def exportable(model: nn.Module) -> nn.Module:
    """A copy of `model` with its PReLUs spelt as `FusablePReLU`."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.PReLU):
                setattr(module, name, FusablePReLU(child))
    return model


def export_graph(
    model: torch.nn.Module,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    example: tuple[torch.Tensor, ...],
    path: Path,
) -> None:
    """`model` as ONNX with these input and output names, any batch size."""
    inputs, outputs = list(names[0]), list(names[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of dynamo,
        # which needs onnxscript; these graphs are plain and export the same.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            exportable(model),
            example,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
            opset_version=OPSET,
            dynamo=False,
        )


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    """The crop embedder's graph."""
    side = triton.CANVAS_SIDE
    example = (torch.zeros(2, side, side, 3, dtype=torch.uint8), torch.full((2, 2), 100, dtype=torch.int32))
    export_graph(model, (INPUTS, OUTPUTS), example, path)


def export_photos_onnx(detector_path: Path, path: Path) -> None:
    """The face detector's graph, from YuNet's weights."""
    side = triton.PHOTO_SIDE
    model = photos.PhotoDetector(yunet.load_onnx(detector_path)).eval()
    example = (torch.zeros(2, side, side, 3, dtype=torch.uint8),)
    export_graph(model, ((triton.DETECTOR_INPUT,), triton.DETECTOR_OUTPUTS), example, path)


def export_model_file(spec: ModelSpec, weights_path: Path, out: Path) -> Path:
    """A built-in model as a model file: `out`/network.onnx (the face network
    alone: normalised float faces in, embeddings out) and `out`/model.toml
    describing it (named `<name>-onnx`, its own model). Answers the TOML's path."""
    network_path = out / "network.onnx"
    backbone = network.load_backbone(spec, weights_path).eval()
    example = (torch.zeros(2, 3, spec.height, spec.width),)
    export_graph(backbone, ((NETWORK_INPUT,), (NETWORK_OUTPUT,)), example, network_path)
    described = replace(spec, name=f"{spec.name}-onnx")
    toml = out / "model.toml"
    toml.write_text(model_file_text(described, network_path.name, sha256_of(network_path)))
    return toml


def export(
    spec: ModelSpec,
    weights_path: Path,
    detector_path: Path,
    out: Path,
    max_batch: int = 64,
    queue_delay_us: int = 2000,
    instances: int = 1,
    gpu_fp16: bool = True,
) -> list[Path]:
    """The repository's two entries, `spec`'s crop embedder and the face
    detector; returns their directories."""
    crops = repository.crop_model(spec, instances)
    detector = repository.photo_model(instances)
    export_onnx(network.build(spec, weights_path, detector_path), out / crops.name / "1" / "model.onnx")
    export_photos_onnx(detector_path, out / detector.name / "1" / "model.onnx")
    for entry, what in (
        (crops, f"{spec.name}'s crop embedder, uint8 crops in, unit embeddings out"),
        (detector, "YuNet's faces in whole photos, uint8 photos in, boxes, scores and landmarks out"),
    ):
        text = config_pbtxt(entry, what, max_batch, queue_delay_us, gpu_fp16)
        (out / entry.name / "config.pbtxt").write_text(text)
    return [out / crops.name, out / detector.name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the model repository to write into")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--weights", type=Path, help="the face model's weights file [cache, then download]")
    parser.add_argument("--detector-weights", type=Path, help="YuNet's ONNX file [cache, then download]")
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--no-gpu-fp16", dest="gpu_fp16", action="store_false", help="no TensorRT fp16 on a GPU")
    args = parser.parse_args()
    spec = get_spec(args.model)
    path = weights.resolve(spec, args.weights, args.data_dir / "models")
    detector = weights.resolve(YUNET, args.detector_weights, args.data_dir / "models")
    for directory in export(
        spec, path, detector, args.out, args.max_batch, args.queue_delay_us, args.instances, args.gpu_fp16
    ):
        print(f"wrote {directory}/config.pbtxt and {directory}/1/model.onnx")


if __name__ == "__main__":
    main()
