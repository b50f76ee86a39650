"""Whole photos for the face detector: its input layout and the faces it found."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesearch_common import triton


@dataclass(frozen=True)
class Face:
    box: npt.NDArray[np.float32]  # [4]: x1, y1, x2, y2
    score: float
    landmarks: npt.NDArray[np.float32]  # [5, 2]


@dataclass(frozen=True)
class DetectionInput:
    pixels: npt.NDArray[np.uint8]  # what the detector sees
    scale: float  # detector pixels per original pixel
    offset: tuple[int, int]  # (x, y) of the original inside `pixels`, in detector pixels


def detection_input(pixels: npt.NDArray[np.uint8]) -> DetectionInput:
    """The photo at the detector canvas's top-left corner, scaled down to fit
    where larger (for detection only: the face is cut from the original
    pixels, so detail is kept where it matters)."""
    height, width = pixels.shape[:2]
    side = triton.PHOTO_SIDE
    scale = min(1.0, side / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[: pixels.shape[0], : pixels.shape[1]] = pixels
    return DetectionInput(canvas, scale, (0, 0))


def faces_in(
    item: DetectionInput,
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    landmarks: npt.NDArray[np.float32],
) -> list[Face]:
    """Detector output for one image -> faces in original-image pixels, largest first as the detector answers."""
    shift = np.asarray(item.offset, np.float32)
    faces = []
    for box, score, points in zip(boxes, scores, landmarks, strict=True):
        if score < triton.DETECTOR_MIN_SCORE:
            continue
        original_box = (box.reshape(2, 2) - shift).reshape(4) / item.scale
        faces.append(
            Face(original_box.astype(np.float32), float(score), ((points - shift) / item.scale).astype(np.float32))
        )
    return faces
