"""Images to embeddings. A crop takes one Triton call: the crop embedder.
A whole photo takes two: the face detector (YuNet) finds its faces, then the
chosen face, cut out, goes through the same crop embedder, so a face is
aligned and embedded one way everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesearch_common import triton

from . import canvas
from .crop_calls import Crops
from .embedder_client import EmbedderClient
from .errors import invalid
from .faces import Face, detection_input, faces_in

# Enrollment: a second face at least this share of the largest face's area
# makes the image ambiguous (a small face in the background does not).
SECOND_FACE_RATIO = 0.5


def area(face: Face) -> float:
    x1, y1, x2, y2 = face.box
    return float((x2 - x1) * (y2 - y1))


@dataclass(frozen=True)
class EmbeddedFace:
    crop: npt.NDArray[np.uint8]  # what was embedded, also the thumbnail
    score: float  # the crop embedder's face score
    vector: npt.NDArray[np.float32]  # [D], unit length

    @property
    def found(self) -> bool:
        """Whether the crop embedder found a face to embed."""
        return self.score >= triton.MIN_FACE_SCORE


class FacePipeline:
    def __init__(self, embedder: EmbedderClient):
        self.embedder = embedder
        self.spec = embedder.spec

    async def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[list[Face]]:
        """Faces of each whole image, largest first, in one call."""
        items = [detection_input(img) for img in images]
        out = await self.embedder.detect(np.stack([item.pixels for item in items]))
        return [
            faces_in(item, out[triton.BOXES][row], out[triton.SCORES][row], out[triton.LANDMARKS][row])
            for row, item in enumerate(items)
        ]

    async def embed_crops(self, crops: list[npt.NDArray[np.uint8]], field: str) -> list[EmbeddedFace]:
        """Face crops (each at most the canvas's side), embedded in one call; a
        crop in which the crop embedder finds no face is an error naming it."""
        embedded = await self.embed_cuts(crops)
        for i, face in enumerate(embedded):
            if not face.found:
                raise invalid("no_face", f"no face found in {field}[{i}]")
        return embedded

    async def embed_cuts(self, crops: list[npt.NDArray[np.uint8]]) -> list[EmbeddedFace]:
        """As embed_crops, where a crop without a face is no error: its
        EmbeddedFace says `found` False."""
        out = await self.embedder.embed_crops(Crops(crops))
        scores = out[triton.SCORES][:, 0]
        vectors = out[triton.EMBEDDINGS]
        return [EmbeddedFace(c, float(s), v) for c, s, v in zip(crops, scores, vectors, strict=True)]

    async def embed_photos(
        self, images: list[npt.NDArray[np.uint8]], field: str, one_person: bool = False
    ) -> list[EmbeddedFace]:
        """The largest face of each whole image, embedded; an image without a
        face is an error naming it. With `one_person` (enrollment), so is an
        image whose second face is nearly as large: which person is meant is
        unclear."""
        detected = await self.detect(images)
        for i, faces in enumerate(detected):
            if not faces:
                raise invalid("no_face", f"no face found in {field}[{i}]")
            if one_person and len(faces) > 1 and area(faces[1]) >= SECOND_FACE_RATIO * area(faces[0]):
                raise invalid(
                    "multiple_faces", f"{field}[{i}] shows more than one face; send images of one person only"
                )
        return await self.embed_crops(self.cuts(images, [faces[0].box for faces in detected]), field)

    @staticmethod
    def cuts(images: list[npt.NDArray[np.uint8]], boxes: list[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.uint8]]:
        """Each face cut out of its photo as enrollment embeds it (canvas.cut)."""
        return [canvas.cut(image, box) for image, box in zip(images, boxes, strict=True)]


def fuse(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Several probes of one person -> one query: the normalised mean of unit vectors."""
    # One probe, the usual search, skips the mean: numpy's reductions cost
    # tens of microseconds a search at this size.
    mean: npt.NDArray[np.float32] = vectors[0] if len(vectors) == 1 else vectors.mean(axis=0)
    norm = float(np.sqrt(np.dot(mean, mean)))
    return (mean / max(norm, 1e-12)).astype(np.float32, copy=False)
