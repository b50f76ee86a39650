"""Cutting a face out of an image the way the model was trained to see it.

Detection (MTCNN) runs in the embedder, on the accelerator, behind Triton's
batching; what happens here is cheap geometry on a few thousand pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesearch_common.specs import Alignment, ModelSpec

# Crops are centred on a fixed canvas before detection: MTCNN finds faces
# far more reliably with some context around them, and equal shapes let
# Triton batch crops from different requests together.
CANVAS_SIDE = 160


@dataclass(frozen=True)
class Face:
    box: npt.NDArray[np.float32]  # [4]: x1, y1, x2, y2
    score: float
    landmarks: npt.NDArray[np.float32]  # [5, 2]


def on_canvas(pixels: npt.NDArray[np.uint8], side: int = CANVAS_SIDE) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """Centre `pixels` on a black side x side canvas; returns it and the (x, y) offset."""
    height, width = pixels.shape[:2]
    canvas = np.zeros((side, side, 3), np.uint8)
    x, y = (side - width) // 2, (side - height) // 2
    canvas[y : y + height, x : x + width] = pixels
    return canvas, (x, y)


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, translation) mapping
    src points onto dst points (Umeyama, 1991). Returns a 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1  # no reflections
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def warp(
    pixels: npt.NDArray[np.uint8], matrix: npt.NDArray[np.float64], width: int, height: int
) -> npt.NDArray[np.uint8]:
    """Apply a 2x3 affine (source -> output coordinates) with bilinear sampling."""
    forward = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]  # Pillow samples output -> source
    out = Image.fromarray(pixels).transform(
        (width, height), Image.Transform.AFFINE, tuple(inverse.ravel()), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out)


def crop_with_margin(
    pixels: npt.NDArray[np.uint8], box: npt.NDArray[np.float32], margin: int, size: int
) -> npt.NDArray[np.uint8]:
    """facenet-pytorch's extract_face: the box grown by `margin` pixels of the
    output image, clipped to the image, resized to size x size."""
    height, width = pixels.shape[:2]
    x1, y1, x2, y2 = box
    grow_x = margin * (x2 - x1) / (size - margin) / 2
    grow_y = margin * (y2 - y1) / (size - margin) / 2
    left, top = int(max(x1 - grow_x, 0)), int(max(y1 - grow_y, 0))
    right, bottom = int(min(x2 + grow_x, width)), int(min(y2 + grow_y, height))
    face = Image.fromarray(pixels).crop((left, top, right, bottom))
    return np.asarray(face.resize((size, size), Image.Resampling.BILINEAR))


def align(pixels: npt.NDArray[np.uint8], face: Face, spec: ModelSpec) -> npt.NDArray[np.uint8]:
    """The model's input for one detected face: uint8 [spec.height, spec.width, 3]."""
    if spec.alignment is Alignment.LANDMARKS:
        matrix = similarity_transform(face.landmarks, np.asarray(spec.template))
        return warp(pixels, matrix, spec.width, spec.height)
    if spec.alignment is Alignment.BOX_MARGIN:
        return crop_with_margin(pixels, face.box, spec.margin, spec.height)
    raise ValueError(f"unknown alignment {spec.alignment}")
