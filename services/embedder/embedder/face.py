"""The face network with its input normalisation (the spec's channel order,
mean and std), the one place the models' pixel scaling is applied. On CUDA
the backbone may run in half precision; the embedding it returns is always
float32 and unit length."""

from __future__ import annotations

import torch
from torch import nn

from facesearch_common.specs import ModelSpec


class FaceEmbedder(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: nn.Module, spec: ModelSpec, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.backbone = backbone.to(dtype)
        self.dtype = dtype
        self.bgr = spec.channels == "BGR"
        self.register_buffer("mean", torch.tensor(spec.pixel_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.pixel_std).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """faces: uint8 [N, H, W, 3] RGB, aligned -> float32 [N, D], unit length."""
        return self.embed(faces.permute(0, 3, 1, 2).float())

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: float [N, 3, H, W] RGB, 0-255, aligned -> float32 [N, D], unit length."""
        return nn.functional.normalize(self.backbone(self.normalised(pixels)).float(), dim=1)

    def normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        """The network's input: channels in its order, (pixel - mean) / std."""
        if self.bgr:
            pixels = pixels.flip(1)
        return ((pixels - self.mean) / self.std).to(self.dtype)
