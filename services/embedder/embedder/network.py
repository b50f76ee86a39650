"""The face networks and the served graph built from them.

`build` is the crop embedder (crops.py): YuNet, the alignment and the face
network in one module, uint8 crops in, L2-normalised embeddings out, so that
every engine (PyTorch here, ONNX Runtime or TensorRT in production Triton)
computes exactly the same thing. `build_face_network` is the face network
alone on aligned faces (the benches' baseline). On CUDA the face network may
run in half precision (`PRECISIONS`); embeddings are always float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from facesearch_common.specs import ModelSpec

from . import graphs, yunet
from .crops import CropEmbedder
from .face import FaceEmbedder
from .mobilefacenet import MobileFaceNet

PRECISIONS = dict(zip(graphs.PRECISIONS, (torch.float32, torch.float16, torch.bfloat16), strict=True))


def build_backbone(spec: ModelSpec) -> nn.Module:
    """A built-in model's network, untrained."""
    if spec.name == "mobilefacenet-casia":
        return MobileFaceNet(spec.dim)
    if spec.name == "facenet-vggface2":
        from facenet_pytorch import InceptionResnetV1

        # No `pretrained=`: facenet-pytorch would download; we load a checked file.
        net: nn.Module = InceptionResnetV1(pretrained=None, classify=False)
        return net
    raise ValueError(f"no network for model {spec.name!r}")


def load_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    # The MobileFaceNet checkpoint wraps the state in a training dict.
    if isinstance(state, dict) and "net_state_dict" in state:
        state = state["net_state_dict"]
    return cast(dict[str, torch.Tensor], state)


def load_backbone(spec: ModelSpec, weights: Path) -> nn.Module:
    """The network with its weights: a built-in model's from its checkpoint, a
    model file's ONNX network converted to PyTorch (onnx2torch), so that the
    crop embedder wraps it as it wraps the built-in ones."""
    if spec.network_file:
        import onnx
        import onnx2torch

        converted: nn.Module = onnx2torch.convert(onnx.load(str(weights)))
        return converted
    backbone = build_backbone(spec)
    state = load_state(weights)
    # facenet-pytorch's file carries the classifier ("logits") of training, unused here.
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    backbone.load_state_dict(state, strict=True)
    return backbone


def dtype_of(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


def build(
    spec: ModelSpec, weights: Path, detector_weights: Path, device: str = "cpu", precision: str = "fp32"
) -> CropEmbedder:
    """The crop embedder for `spec`, with YuNet's weights from `detector_weights`."""
    from facenet_pytorch.models.mtcnn import ONet, RNet

    dtype = dtype_of(precision)
    # R-Net's and O-Net's weights ship inside facenet-pytorch.
    stages = RNet(pretrained=True), ONet(pretrained=True)
    face = FaceEmbedder(load_backbone(spec, weights), spec, dtype)
    net = CropEmbedder(yunet.load_onnx(detector_weights), *stages, face, spec)
    return net.eval().to(device)


def build_face_network(spec: ModelSpec, weights: Path, device: str = "cpu", precision: str = "fp32") -> FaceEmbedder:
    """The face network alone: aligned uint8 faces in, unit embeddings out."""
    return FaceEmbedder(load_backbone(spec, weights), spec, dtype_of(precision)).eval().to(device)
