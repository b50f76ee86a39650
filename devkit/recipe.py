"""The recognition recipe in one process, without the services: MTCNN, the
gateway's face choice and alignment, the embedding network. Benchmarks use it
as their baseline and tests to check the recipe itself."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from devkit import lfw
from embedder import network
from embedder.detector import Detector
from facesearch_common.specs import ModelSpec
from facesearch_common.triton import BOXES, LANDMARKS, SCORES
from gateway.alignment import align
from gateway.faces import detection_input, faces_in


class Recipe:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.detector = Detector("cpu")
        self.net = network.build(spec, lfw.MOBILEFACENET)

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
