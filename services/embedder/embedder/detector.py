"""Face detection with facenet-pytorch's MTCNN (its weights ship in the package).

Batched: N images of one size in, a fixed number of face slots per image out
(unused slots have score 0), so Triton can batch requests of the same shape.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch import MTCNN

from facesearch_common import triton

MAX_FACES = 16


class Detector:
    def __init__(self, device: str = "cpu", min_face_size: int = 20):
        self.mtcnn = MTCNN(device=torch.device(device), min_face_size=min_face_size, keep_all=True)

    @torch.inference_mode()
    def detect(self, images: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float32]]:
        """images: uint8 [N, H, W, 3] RGB.

        Returns boxes float32 [N, K, 4] (x1, y1, x2, y2), scores float32 [N, K],
        landmarks float32 [N, K, 5, 2] (left eye, right eye, nose, left and right
        mouth corners), best face first by area; K = MAX_FACES.
        """
        n = images.shape[0]
        boxes = np.zeros((n, MAX_FACES, 4), np.float32)
        scores = np.zeros((n, MAX_FACES), np.float32)
        landmarks = np.zeros((n, MAX_FACES, 5, 2), np.float32)
        found, probs, points = self.mtcnn.detect(images, landmarks=True)
        for i in range(n):
            if found[i] is None:
                continue
            b = np.asarray(found[i], np.float32)
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            order = np.argsort(-area, kind="stable")[:MAX_FACES]
            k = len(order)
            boxes[i, :k] = b[order]
            scores[i, :k] = np.asarray(probs[i], np.float32)[order]
            landmarks[i, :k] = np.asarray(points[i], np.float32)[order]
        return {triton.BOXES: boxes, triton.SCORES: scores, triton.LANDMARKS: landmarks}
