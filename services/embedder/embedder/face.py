"""The face network with its input normalisation, the one place the models'
pixel scaling is written. On CUDA the backbone may run in half precision;
the embedding it returns is always float32 and unit length."""

from __future__ import annotations

import torch
from torch import nn


class FaceEmbedder(nn.Module):
    def __init__(self, backbone: nn.Module, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.backbone = backbone.to(dtype)
        self.dtype = dtype

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """faces: uint8 [N, H, W, 3] RGB, aligned -> float32 [N, D], unit length."""
        return self.embed(faces.permute(0, 3, 1, 2).float())

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: float [N, 3, H, W] RGB, 0-255, aligned -> float32 [N, D], unit length."""
        # Both shipped models were trained on (pixel - 127.5) / 128.
        x = ((pixels - 127.5) / 128.0).to(self.dtype)
        return nn.functional.normalize(self.backbone(x).float(), dim=1)
