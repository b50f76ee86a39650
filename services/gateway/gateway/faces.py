"""Whole photos for the detector: its input layout and the faces it found."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

# Larger images are scaled down for detection only; the face is cut from the
# original pixels, so detail is kept where it matters.
DETECT_MAX_SIDE = 640
# MTCNN's final-stage probability below which a detection is ignored.
MIN_FACE_SCORE = 0.9


# Small images are centred on a canvas this big for MTCNN, which finds faces
# far more reliably with some context around them.
DETECT_CANVAS_SIDE = 160


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
    height, width = pixels.shape[:2]
    if max(height, width) <= DETECT_CANVAS_SIDE:
        side = DETECT_CANVAS_SIDE
        canvas = np.zeros((side, side, 3), np.uint8)
        x, y = (side - width) // 2, (side - height) // 2
        canvas[y : y + height, x : x + width] = pixels
        return DetectionInput(canvas, 1.0, (x, y))
    if max(height, width) > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))
        return DetectionInput(small, scale, (0, 0))
    return DetectionInput(pixels, 1.0, (0, 0))


def faces_in(
    item: DetectionInput,
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    landmarks: npt.NDArray[np.float32],
) -> list[Face]:
    """Detector output for one image -> faces in original-image pixels, largest first."""
    shift = np.asarray(item.offset, np.float32)
    faces = []
    for box, score, points in zip(boxes, scores, landmarks, strict=True):
        if score < MIN_FACE_SCORE:
            continue
        original_box = (box.reshape(2, 2) - shift).reshape(4) / item.scale
        faces.append(
            Face(original_box.astype(np.float32), float(score), ((points - shift) / item.scale).astype(np.float32))
        )
    return faces
