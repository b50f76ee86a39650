"""Today's recipe until the crop embedder, kept in process as the benches'
baseline and for the face network alone: MTCNN on a 160x160 canvas, the
face chosen and aligned with Pillow (a least-squares similarity transform
onto the template, or the box plus a margin), then the face network on the
aligned face. The product no longer holds this code: it aligns inside the
crop embedder's graph (services/embedder/embedder/crops.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from devkit import lfw
from embedder import network
from embedder.detector import Detector
from facesearch_common.specs import Alignment, ModelSpec
from facesearch_common.triton import BOXES, LANDMARKS, SCORES
from gateway.faces import Face, detection_input, faces_in


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


class LegacyRecipe:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.detector = Detector("cpu")
        self.net = network.build_face_network(spec, lfw.MOBILEFACENET)

    def aligned(self, pixels: np.ndarray) -> np.ndarray | None:
        """The model's input for the largest face in `pixels`, or None."""
        item = detection_input(pixels)
        out = self.detector.detect(item.pixels[None])
        faces = faces_in(item, out[BOXES][0], out[SCORES][0], out[LANDMARKS][0])
        return align(pixels, faces[0], self.spec) if faces else None

    def lfw_portraits(self, identities: int) -> tuple[np.ndarray, np.ndarray]:
        """The model's inputs for every lfw-dev portrait of the first
        `identities` identities where a face is found, and each one's identity."""
        faces, labels = [], []
        for label, name in enumerate(lfw.identities()[:identities]):
            for path in lfw.photos(name):
                face = self.aligned(np.asarray(lfw.portrait(path)))
                if face is not None:
                    faces.append(face)
                    labels.append(label)
        return np.stack(faces), np.array(labels)

    def embed(self, faces: Sequence[np.ndarray] | np.ndarray, batch: int = 256) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate(
                [self.net(torch.tensor(np.asarray(faces[i : i + batch]))).numpy() for i in range(0, len(faces), batch)]
            )
