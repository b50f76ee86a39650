"""Images to embeddings: detect (Triton), choose the face, align, embed (Triton)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesearch_common.triton import BOXES, LANDMARKS, SCORES

from .alignment import Face, align
from .embedder_client import EmbedderClient
from .errors import invalid
from .faces import detection_input, faces_in

# Enrollment: a second face at least this share of the largest face's area
# makes the image ambiguous (a small face in the background does not).
SECOND_FACE_RATIO = 0.5


def area(face: Face) -> float:
    x1, y1, x2, y2 = face.box
    return float((x2 - x1) * (y2 - y1))


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    aligned: npt.NDArray[np.uint8]  # the model's input, also the thumbnail
    vector: npt.NDArray[np.float32]  # [D], unit length


class FacePipeline:
    def __init__(self, embedder: EmbedderClient):
        self.embedder = embedder
        self.spec = embedder.spec

    async def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[list[Face]]:
        """Faces of each image, largest first. Images of one detector shape go in one call."""
        items = [detection_input(img) for img in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            groups[item.pixels.shape].append(i)
        found: list[list[Face]] = [[] for _ in images]

        async def run(indices: list[int]) -> None:
            out = await self.embedder.detect(np.stack([items[i].pixels for i in indices]))
            for row, i in enumerate(indices):
                found[i] = faces_in(items[i], out[BOXES][row], out[SCORES][row], out[LANDMARKS][row])

        await asyncio.gather(*(run(ix) for ix in groups.values()))
        return found

    async def embed_one_face_each(
        self, images: list[npt.NDArray[np.uint8]], field: str, one_person: bool = False
    ) -> list[EmbeddedFace]:
        """The largest face of each image, embedded; an image without a face is
        an error naming it. With `one_person` (enrollment), so is an image
        whose second face is nearly as large: which person is meant is unclear."""
        detected = await self.detect(images)
        for i, faces in enumerate(detected):
            if not faces:
                raise invalid("no_face", f"no face found in {field}[{i}]")
            if one_person and len(faces) > 1 and area(faces[1]) >= SECOND_FACE_RATIO * area(faces[0]):
                raise invalid(
                    "multiple_faces", f"{field}[{i}] shows more than one face; send images of one person only"
                )
        chosen = [faces[0] for faces in detected]
        aligned = [align(img, face, self.spec) for img, face in zip(images, chosen, strict=True)]
        vectors = await self.embedder.embed(np.stack(aligned))
        return [EmbeddedFace(f, a, v) for f, a, v in zip(chosen, aligned, vectors, strict=True)]


def fuse(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Several probes of one person -> one query: the normalised mean of unit vectors."""
    mean: npt.NDArray[np.float32] = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
