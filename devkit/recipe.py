"""The recognition recipe in one process, without the services: the crop
embedder (crops.py's graph, in PyTorch) for crops, and for whole photos the
face detector (photos.py's graph, the embedder's PyTorch engine), the
gateway's face choice and its cut. Benchmarks use it as their in-process
baseline and tests to check the recipe itself."""

from __future__ import annotations

import numpy as np
import torch

from devkit import lfw
from embedder import engines, network
from facesearch_common import triton
from facesearch_common.specs import ModelSpec
from gateway import canvas
from gateway.faces import Face, detection_input, faces_in

BATCH = 64


def inputs(crops: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The crop embedder's input tensors for `crops`, as the gateway sends them."""
    canvases, sizes = canvas.placed(crops)
    return {triton.CROPS: canvases, triton.SIZES: sizes}


class Recipe:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.detector = engines.torch_photos(lfw.YUNET, "cpu")
        self.net = network.build(spec, lfw.MOBILEFACENET, lfw.YUNET)

    def crops(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(unit embeddings [N, D], face scores [N]) of face crops."""
        vectors, scores = [], []
        with torch.inference_mode():
            for i in range(0, len(crops), BATCH):
                tensors = inputs(crops[i : i + BATCH])
                out = self.net(torch.from_numpy(tensors[triton.CROPS]), torch.from_numpy(tensors[triton.SIZES]))
                vectors.append(out[0].numpy())
                scores.append(out[1][:, 0].numpy())
        return np.concatenate(vectors), np.concatenate(scores)

    def cut(self, pixels: np.ndarray) -> np.ndarray | None:
        """The gateway's cut of the largest face in a whole photo, or None."""
        faces = self.faces(pixels)
        return canvas.cut(pixels, faces[0].box) if faces else None

    def faces(self, pixels: np.ndarray) -> list[Face]:
        """The faces the gateway finds in a whole photo, largest first."""
        item = detection_input(pixels)
        out = self.detector({triton.DETECTOR_INPUT: item.pixels[None]})
        return faces_in(item, *(out[name][0] for name in triton.DETECTOR_OUTPUTS))

    def lfw_portraits(self, identities: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of every lfw-dev portrait of the first `identities`
        identities where a face is found, and each one's identity."""
        cuts, labels = [], []
        for label, name in enumerate(lfw.identities()[:identities]):
            for path in lfw.photos(name):
                face = self.cut(np.asarray(lfw.portrait(path)))
                if face is not None:
                    cuts.append(face)
                    labels.append(label)
        return self.crops(cuts)[0], np.array(labels)
