"""The crop embedder: face crops to unit embeddings in one graph.

A crop sent to search/crops is already a face: it needs landmarks, not a
detector pyramid. One module, exported as one ONNX graph, does what the
gateway and two Triton models did before:

1. YuNet on the crop's canvas (`facesearch_common.triton`'s layout: the crop
   centred, unscaled, on a black square), every cell decoded as OpenCV does.
2. The face: a crop holds one, so no NMS. Among the confident cells, the one
   whose box is the most central and the largest in the crop (a crop with a
   bystander's face in its corner keeps its subject); when no cell is
   confident, the best score, which the gateway then refuses as `no_face`.
3. Its landmarks and box the way the face models were trained to be aligned:
   MTCNN's R-Net and O-Net (facenet-pytorch's weights) on YuNet's box as the
   only candidate. YuNet's own landmarks follow another convention; aligning
   MobileFaceNet by them cost 4.5 points of rank-1 on lfw-dev, O-Net's cost
   none (bench/history/2026-11-25-to-2026-12-05.md, Accuracy).
4. The face model's own alignment, as tensor operations: a least-squares
   similarity of the five landmarks onto the spec's template (closed form, no
   SVD), or the box plus the spec's margin, as a 2x3 affine map.
5. One bilinear warp of the canvas (`grid_sample`), the face network,
   normalisation.

Outputs, per crop: the unit embedding, the face score (YuNet's, 0..1), and
the box and landmarks it was aligned by, in canvas pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from facesearch_common import triton
from facesearch_common.specs import Alignment, ModelSpec

from . import yunet
from .face import FaceEmbedder

# MTCNN's input scaling for R-Net and O-Net.
MTCNN_MEAN, MTCNN_SCALE = 127.5, 0.0078125
# Boxes are sampled at this many points a side per input pixel of R-Net and
# O-Net, then averaged: MTCNN resizes by area, which grid_sample cannot.
SUPERSAMPLE = 4

# Cells at least this confident compete on centrality and size; a face that
# YuNet scores lower is not chosen over a confident one.
PICK_SCORE = 0.5


class CropEmbedder(nn.Module):
    cells: torch.Tensor  # [A, 3]: YuNet's cells on the canvas
    template: torch.Tensor  # [5, 2]: the landmark template, continuous coordinates
    pixels: torch.Tensor  # [H * W, 3]: output pixel centres, normalised, with a 1

    def __init__(
        self,
        detector: yunet.YuNet,
        refine: nn.Module,
        landmarker: nn.Module,
        face: FaceEmbedder,
        spec: ModelSpec,
    ):
        """`refine` and `landmarker` are MTCNN's R-Net (24x24 in: box
        regression, face probability) and O-Net (48x48 in: box regression,
        landmarks, face probability)."""
        super().__init__()
        self.detector = detector
        self.refine = refine
        self.landmarker = landmarker
        self.face = face
        self.alignment = spec.alignment
        self.margin = float(spec.margin)
        self.out_height, self.out_width = spec.height, spec.width
        side = triton.CANVAS_SIDE
        self.register_buffer("cells", yunet.cell_grid(side, side), persistent=False)
        # The template in continuous coordinates (pixel i spans [i, i + 1]).
        template = spec.template if spec.alignment is Alignment.LANDMARKS else ((0.0, 0.0),) * 5
        self.register_buffer("template", torch.tensor(template, dtype=torch.float32) + 0.5, persistent=False)
        # Every output pixel's centre in normalised coordinates (-1..1), with a 1: [H * W, 3].
        ys, xs = torch.meshgrid(
            (torch.arange(self.out_height, dtype=torch.float32) + 0.5) * 2 / self.out_height - 1,
            (torch.arange(self.out_width, dtype=torch.float32) + 0.5) * 2 / self.out_width - 1,
            indexing="ij",
        )
        self.register_buffer(
            "pixels", torch.stack([xs.flatten(), ys.flatten(), torch.ones(xs.numel())], dim=1), persistent=False
        )

    def forward(
        self, crops: torch.Tensor, sizes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """crops: uint8 [N, S, S, 3] RGB canvases; sizes: int32 [N, 2], each
        crop's height and width. Returns embeddings float32 [N, D], scores
        [N, 1], boxes [N, 4] (x1, y1, x2, y2) and landmarks [N, 5, 2]."""
        rgb = crops.permute(0, 3, 1, 2).float()
        scores, boxes, _ = yunet.decode(self.detector(rgb[:, [2, 1, 0]]), self.cells)
        region = crop_region(sizes.float(), float(triton.CANVAS_SIDE))
        pick = choose(scores, boxes, region)
        score = scores.gather(1, pick[:, None])
        box, points = self.landmarks(rgb, boxes.gather(1, pick[:, None, None].expand(-1, 1, 4))[:, 0])
        if self.alignment is Alignment.LANDMARKS:
            inverse = similarity_inverse(points + 0.5, self.template)
        else:
            inverse = box_inverse(box, region, self.margin, self.out_width, self.out_height)
        faces = self.warp(rgb, inverse)
        return self.face.embed(faces), score, box, points

    def landmarks(self, rgb: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MTCNN's second and third stages on one box per crop: the refined
        box [N, 4] and the five landmarks [N, 5, 2]."""
        box = square(box)
        regression, _ = self.refine((sample_box(rgb, box, 24) - MTCNN_MEAN) * MTCNN_SCALE)
        box = square(regress(box, regression))
        regression, points, _ = self.landmarker((sample_box(rgb, box, 48) - MTCNN_MEAN) * MTCNN_SCALE)
        size = box[:, 2:] - box[:, :2]
        # O-Net answers the five x, then the five y, as fractions of the box.
        xs = size[:, 0:1] * points[:, :5] + box[:, 0:1]
        ys = size[:, 1:2] * points[:, 5:] + box[:, 1:2]
        return regress(box, regression), torch.stack([xs, ys], dim=2)

    def warp(self, rgb: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        """Samples the face from `rgb` [N, 3, S, S]; `inverse` [N, 2, 3] maps
        output pixels (continuous) to canvas pixels."""
        side = float(rgb.shape[-1])
        half = torch.tensor([self.out_width / 2, self.out_height / 2], dtype=torch.float32, device=rgb.device)
        linear, shift = inverse[:, :, :2], inverse[:, :, 2]
        # Output normalised -> output pixels -> canvas pixels -> canvas normalised.
        theta_linear = linear * half[None, None, :] * (2 / side)
        theta_shift = (linear @ half + shift) * (2 / side) - 1
        theta = torch.cat([theta_linear, theta_shift[:, :, None]], dim=2)
        grid = (self.pixels @ theta.transpose(1, 2)).reshape(-1, self.out_height, self.out_width, 2)
        return nn.functional.grid_sample(rgb, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def square(box: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square about its centre (MTCNN's `rerec`)."""
    size = box[:, 2:] - box[:, :2]
    side = size.max(dim=1, keepdim=True).values
    low = box[:, :2] + size / 2 - side / 2
    return torch.cat([low, low + side], dim=1)


def regress(box: torch.Tensor, regression: torch.Tensor) -> torch.Tensor:
    """MTCNN's box regression: each edge moved by a fraction of the box's size."""
    size = (box[:, 2:] - box[:, :2]).repeat(1, 2)
    return box + regression * size


def sample_box(rgb: torch.Tensor, box: torch.Tensor, side: int) -> torch.Tensor:
    """[N, 3, side, side]: each box of `rgb` resampled, averaging
    SUPERSAMPLE x SUPERSAMPLE bilinear samples per output pixel."""
    points = side * SUPERSAMPLE
    steps = (torch.arange(points, dtype=torch.float32, device=rgb.device) + 0.5) / points
    canvas = float(rgb.shape[-1])
    xs = (box[:, 0:1] + steps[None] * (box[:, 2:3] - box[:, 0:1])) * (2 / canvas) - 1
    ys = (box[:, 1:2] + steps[None] * (box[:, 3:4] - box[:, 1:2])) * (2 / canvas) - 1
    grid = torch.stack([xs[:, None, :].expand(-1, points, -1), ys[:, :, None].expand(-1, -1, points)], dim=3)
    sampled = nn.functional.grid_sample(rgb, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return nn.functional.avg_pool2d(sampled, SUPERSAMPLE)


def crop_region(sizes: torch.Tensor, side: float) -> torch.Tensor:
    """[N, 4]: x1, y1, x2, y2 of each crop on the canvas (`triton.crop_offset`)."""
    height, width = sizes[:, 0], sizes[:, 1]
    x0, y0 = torch.floor((side - width) / 2), torch.floor((side - height) / 2)
    return torch.stack([x0, y0, x0 + width, y0 + height], dim=1)


def choose(scores: torch.Tensor, boxes: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """[N]: the chosen cell of each crop."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    region_centre = (region[:, None, :2] + region[:, None, 2:]) / 2
    extent = region[:, None, 2:] - region[:, None, :2]
    reach = torch.sqrt((extent * extent).sum(-1)) / 2
    offset = centre - region_centre
    centrality = (1 - torch.sqrt((offset * offset).sum(-1)) / reach).clamp(min=0)
    size = boxes[..., 2:] - boxes[..., :2]
    area = (size[..., 0] * size[..., 1] / (extent[..., 0] * extent[..., 1])).clamp(0, 1)
    key = torch.where(scores >= PICK_SCORE, scores * centrality * area, scores - 2)
    return key.argmax(dim=1)


def similarity_inverse(points: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """[N, 2, 3]: the inverse of the least-squares similarity (rotation,
    uniform scale, translation) taking `points` [N, 5, 2] onto `template`
    [5, 2]. For 2-D points it has a closed form (Umeyama's, without a
    reflection): a = sum(p . q) / sum(|p|^2), b = sum(p x q) / sum(|p|^2) over
    the centred points, the map being [[a, -b], [b, a]] plus a translation."""
    src_mean = points.mean(dim=1, keepdim=True)
    dst_mean = template.mean(dim=0, keepdim=True)[None]
    p, q = points - src_mean, template[None] - dst_mean
    norm = (p * p).sum(dim=(1, 2))
    a = (p * q).sum(dim=(1, 2)) / norm
    b = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(dim=1) / norm
    # Inverse of s*R is R^T / s: [[a, b], [-b, a]] / (a^2 + b^2).
    scale = a * a + b * b
    inv = torch.stack([torch.stack([a, b], dim=1), torch.stack([-b, a], dim=1)], dim=1) / scale[:, None, None]
    shift = src_mean[:, 0] - (inv @ dst_mean[0, 0, :, None])[..., 0]
    return torch.cat([inv, shift[:, :, None]], dim=2)


def box_inverse(box: torch.Tensor, region: torch.Tensor, margin: float, width: int, height: int) -> torch.Tensor:
    """[N, 2, 3]: output pixels to canvas pixels for facenet-pytorch's
    extract_face: the box grown by `margin` pixels of the output, clipped to
    the crop, resized to the output (FaceNet's training recipe)."""
    size = box[:, 2:] - box[:, :2]
    grow = margin * size / (torch.tensor([width, height], dtype=torch.float32, device=box.device) - margin) / 2
    low = torch.maximum(box[:, :2] - grow, region[:, :2])
    high = torch.minimum(box[:, 2:] + grow, region[:, 2:])
    step = (high - low) / torch.tensor([width, height], dtype=torch.float32, device=box.device)
    zero = torch.zeros_like(step[:, 0])
    rows = [torch.stack([step[:, 0], zero, low[:, 0]], dim=1), torch.stack([zero, step[:, 1], low[:, 1]], dim=1)]
    return torch.stack(rows, dim=1)
