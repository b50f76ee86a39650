"""YuNet, a small face detector with five landmarks (Wu, Peng, Yu, 2023), as
a PyTorch module, so that it runs inside the crop embedder's one graph.

The weights are OpenCV Zoo's ONNX file (MIT; BatchNorm already folded into
the convolutions): `load_onnx` copies its 53 convolutions into this module in
graph order, checking every shape. The layout, read from that graph:
a stride-2 stem, five stages of depthwise-separable units (1x1 conv, 3x3
depthwise conv, ReLU) with max pools to strides 8, 16 and 32, a top-down
neck (nearest upsampling and addition), and per stride four heads (class,
box, objectness, five landmarks), each a 1x1 conv and a 3x3 depthwise conv.

`forward` answers the raw per-cell predictions of every stride, flattened
in row-major cell order and concatenated from stride 8 to 32; `decode` turns
them into scores, boxes and landmarks in input pixels the way OpenCV's
`FaceDetectorYN` does (modules/objdetect/src/face_detect.cpp).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

STRIDES = (8, 16, 32)
# Input sides must be multiples of the largest stride.
DIVISOR = 32


class DepthwiseUnit(nn.Module):
    """1x1 conv, then a 3x3 depthwise conv, then ReLU unless `linear`."""

    def __init__(self, cin: int, cout: int, linear: bool = False):
        super().__init__()
        self.point = nn.Conv2d(cin, cout, 1)
        self.depth = nn.Conv2d(cout, cout, 3, padding=1, groups=cout)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.depth(self.point(x))
        return y if self.linear else torch.relu(y)


def stage(channels: list[tuple[int, int]]) -> nn.Sequential:
    return nn.Sequential(*(DepthwiseUnit(cin, cout) for cin, cout in channels))


class YuNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.stem_unit = DepthwiseUnit(16, 16)
        self.stages = nn.ModuleList(
            [
                stage([(16, 16), (16, 32)]),  # stride 4
                stage([(32, 32), (32, 64)]),  # stride 4, pooled to 8 after
                stage([(64, 64), (64, 64)]),  # stride 8
                stage([(64, 64), (64, 64)]),  # stride 16
                stage([(64, 64), (64, 64)]),  # stride 32
            ]
        )
        # Top-down neck: stride 32, then 16 and 8 (upsampled and added).
        self.neck = nn.ModuleList([DepthwiseUnit(64, 64) for _ in STRIDES])
        # Heads per stride (8, 16, 32), in the ONNX graph's order.
        self.heads = nn.ModuleDict(
            {
                name: nn.ModuleList([DepthwiseUnit(64, width, linear=True) for _ in STRIDES])
                for name, width in (("cls", 1), ("bbox", 4), ("obj", 1), ("kps", 10))
            }
        )

    def forward(self, bgr: torch.Tensor) -> dict[str, torch.Tensor]:
        """bgr: float [N, 3, H, W], 0-255, sides multiples of 32. Per cell of
        every stride: cls and obj [N, A] (0..1), bbox [N, A, 4], kps [N, A, 10]."""
        x = torch.relu(self.stem(bgr))
        x = nn.functional.max_pool2d(self.stem_unit(x), 2)
        x = self.stages[0](x)
        x = nn.functional.max_pool2d(self.stages[1](x), 2)
        s8 = self.stages[2](x)
        s16 = self.stages[3](nn.functional.max_pool2d(s8, 2))
        s32 = self.stages[4](nn.functional.max_pool2d(s16, 2))
        p32 = self.neck[0](s32)
        p16 = self.neck[1](s16 + nn.functional.interpolate(p32, scale_factor=2.0, mode="nearest"))
        p8 = self.neck[2](s8 + nn.functional.interpolate(p16, scale_factor=2.0, mode="nearest"))
        levels = (p8, p16, p32)
        out = {}
        for name in self.heads:
            heads = cast(nn.ModuleList, self.heads[name])
            cells = [head(level).permute(0, 2, 3, 1).flatten(1, 2) for head, level in zip(heads, levels, strict=True)]
            out[name] = torch.cat(cells, dim=1)
        out["cls"] = torch.sigmoid(out["cls"][..., 0])
        out["obj"] = torch.sigmoid(out["obj"][..., 0])
        return out

    def convs(self) -> list[nn.Conv2d]:
        """Every convolution in the order the ONNX graph holds them."""
        units = [self.stem_unit, *self.stages.modules(), *self.neck.modules(), *self.heads.modules()]
        convs = [c for u in units if isinstance(u, DepthwiseUnit) for c in (u.point, u.depth)]
        return [self.stem, *dict.fromkeys(convs)]


def load_onnx(path: Path) -> YuNet:
    """A YuNet with the weights of OpenCV Zoo's ONNX file at `path`."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    found = [node for node in graph.node if node.op_type == "Conv"]
    net = YuNet()
    convs = net.convs()
    if len(found) != len(convs):
        raise ValueError(f"{path}: {len(found)} convolutions, a YuNet has {len(convs)}")
    with torch.no_grad():
        for conv, node in zip(convs, found, strict=True):
            weight, bias = weights[node.input[1]], weights[node.input[2]]
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: {node.output[0]} is {weight.shape}, expected {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.tensor(weight))
            assert conv.bias is not None
            conv.bias.copy_(torch.tensor(bias))
    return net.eval()


def cell_grid(height: int, width: int) -> torch.Tensor:
    """[A, 3]: each cell's column, row and stride, in `forward`'s order."""
    rows = []
    for stride in STRIDES:
        ys, xs = torch.meshgrid(
            torch.arange(height // stride, dtype=torch.float32),
            torch.arange(width // stride, dtype=torch.float32),
            indexing="ij",
        )
        rows.append(torch.stack([xs.flatten(), ys.flatten(), torch.full((xs.numel(),), float(stride))], dim=1))
    return torch.cat(rows)


def decode(out: dict[str, torch.Tensor], grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per cell: score [N, A], box [N, A, 4] (x1, y1, x2, y2) and landmarks
    [N, A, 5, 2] (image-left eye, image-right eye, nose, mouth corners), in
    input pixels."""
    score = torch.sqrt(out["cls"].clamp(0, 1) * out["obj"].clamp(0, 1))
    cell, stride = grid[:, :2], grid[:, 2:]
    bbox = out["bbox"]
    centre = (cell + bbox[..., :2]) * stride
    size = torch.exp(bbox[..., 2:]) * stride
    box = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
    n, a = score.shape
    landmarks = (out["kps"].reshape(n, a, 5, 2) + cell[:, None, :]) * stride[:, None, :]
    return score, box, landmarks
