"""The recipe until the crop embedder, kept in process as the benches'
baseline and for the face network alone: MTCNN (facenet-pytorch's) on a
160x160 canvas, the face chosen and aligned with Pillow (a least-squares
similarity transform onto the template, or the box plus a margin), then the
face network on the aligned face. The product no longer holds this code: it
aligns inside the crop embedder's graph (services/embedder/embedder/crops.py)
and finds faces in photos with YuNet (embedder/photos.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from devkit import lfw
from embedder import network
from facesearch_common.specs import Alignment, ModelSpec
from facesearch_common.triton import BOXES, LANDMARKS, MAX_FACES, SCORES
from gateway.faces import DetectionInput, Face, faces_in

# MTCNN's final-stage probability below which a detection was ignored.
MIN_FACE_SCORE = 0.9
# Small images were centred on a canvas this big, on which MTCNN finds faces
# far more reliably with some context around them; larger ones were scaled
# down to at most DETECT_MAX_SIDE.
DETECT_CANVAS_SIDE, DETECT_MAX_SIDE = 160, 640


class Detector:
    """MTCNN, batched: N images of one size in, MAX_FACES face slots per image out."""

    def __init__(self, device: str = "cpu", min_face_size: int = 20):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(device=torch.device(device), min_face_size=min_face_size, keep_all=True)

    @torch.inference_mode()
    def detect(self, images: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float32]]:
        """images: uint8 [N, H, W, 3] RGB -> boxes [N, K, 4], scores [N, K] and
        landmarks [N, K, 5, 2], largest face first (the detector contract);
        faces below MIN_FACE_SCORE leave their slot empty, as the face
        detector's graph does below its own threshold."""
        n = images.shape[0]
        boxes = np.zeros((n, MAX_FACES, 4), np.float32)
        scores = np.zeros((n, MAX_FACES), np.float32)
        landmarks = np.zeros((n, MAX_FACES, 5, 2), np.float32)
        found, probs, points = self.mtcnn.detect(images, landmarks=True)
        for i in range(n):
            if found[i] is None:
                continue
            b, p, q = (np.asarray(a, np.float32) for a in (found[i], probs[i], points[i]))
            b, p, q = b[p >= MIN_FACE_SCORE], p[p >= MIN_FACE_SCORE], q[p >= MIN_FACE_SCORE]
            order = np.argsort(-(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), kind="stable")[:MAX_FACES]
            k = len(order)
            boxes[i, :k], scores[i, :k], landmarks[i, :k] = b[order], p[order], q[order]
        return {BOXES: boxes, SCORES: scores, LANDMARKS: landmarks}

    def faces(self, pixels: npt.NDArray[np.uint8]) -> list[Face]:
        """The faces of one whole photo, in its pixels, largest first."""
        item = detection_input(pixels)
        out = self.detect(item.pixels[None])
        return faces_in(item, out[BOXES][0], out[SCORES][0], out[LANDMARKS][0])


def detection_input(pixels: npt.NDArray[np.uint8]) -> DetectionInput:
    """MTCNN's input layout."""
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
        faces = self.detector.faces(pixels)
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
