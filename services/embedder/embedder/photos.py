"""The face detector for whole photos: YuNet as one exportable graph, served
as `triton.DETECTOR_MODEL` (facesearch_common/triton.py holds its tensors).
It replaced MTCNN, a Python-backend model the official Triton image could
not serve: on whole lfw-dev photos YuNet picks the subject more often, at a
quarter of MTCNN's time (bench/RESULTS.md, "Detectors on whole photos").

Inside: YuNet, decoded the way OpenCV's FaceDetectorYN does (yunet.decode),
the CANDIDATES best cells, then "fast NMS" (Bolya et al., YOLACT, 2019): a
candidate goes when any better one overlaps it by more than NMS_IOU. Unlike
greedy NMS a suppressed box still suppresses, which can only drop a few
more of the faint duplicates; in exchange it is a handful of tensor
operations that export to ONNX as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from facesearch_common import triton

from . import yunet

# The canvas (triton.PHOTO_SIDE) is a multiple of YuNet's stride 32. One
# photo on one core took 16.9 ms at 256, 23.9 at 320 and 72.6 at 640
# (2026-12-02, the message of commit 59a71a9); 320 keeps a face of 20 pixels in a 640-pixel photo at 10,
# YuNet's smallest.
SIDE = triton.PHOTO_SIDE
CANDIDATES = 64
MAX_FACES = triton.MAX_FACES
# NMS at FaceDetectorYN's default overlap.
SCORE, NMS_IOU = triton.DETECTOR_MIN_SCORE, 0.3


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """[N, K, 4] (x1, y1, x2, y2) -> [N, K, K]."""
    top_left = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    bottom_right = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0).prod(dim=-1)
    return inter / (area[:, :, None] + area[:, None, :] - inter).clamp(min=1e-6)


class PhotoDetector(nn.Module):
    cells: torch.Tensor

    def __init__(self, detector: yunet.YuNet, side: int = SIDE) -> None:
        super().__init__()
        self.detector = detector
        self.register_buffer("cells", yunet.cell_grid(side, side), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images: uint8 [N, SIDE, SIDE, 3] RGB. Returns boxes [N, K, 4],
        scores [N, K] (0 for an empty slot) and landmarks [N, K, 5, 2]."""
        bgr = images.permute(0, 3, 1, 2)[:, [2, 1, 0]].float()
        scores, boxes, landmarks = yunet.decode(self.detector(bgr), self.cells)
        best, index = scores.topk(CANDIDATES, dim=1)  # best first
        boxes = boxes.gather(1, index[..., None].expand(-1, -1, 4))
        landmarks = landmarks.gather(1, index[..., None, None].expand(-1, -1, 5, 2))
        overlap = pairwise_iou(boxes).triu(diagonal=1)  # [i, j]: a better i over j
        kept = (overlap.amax(dim=1) <= NMS_IOU) & (best >= SCORE)
        area = (boxes[..., 2:] - boxes[..., :2]).prod(dim=-1)
        order = torch.where(kept, area, torch.full_like(area, -1.0)).topk(MAX_FACES, dim=1).indices
        kept = kept.gather(1, order)
        boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4)) * kept[..., None]
        landmarks = landmarks.gather(1, order[..., None, None].expand(-1, -1, 5, 2)) * kept[..., None, None]
        return boxes, best.gather(1, order) * kept, landmarks
