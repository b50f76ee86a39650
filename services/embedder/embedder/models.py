"""Triton bindings: the tensors and batching of each served model.

Production Triton (the official image) serves the same model names and
tensors from an exported model repository; the gateway cannot tell them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

from facesearch_common.specs import ModelSpec

from .detector import MAX_FACES, Detector
from .engines import Engine

log = logging.getLogger(__name__)

DETECTOR_MODEL = "mtcnn"


@dataclass(frozen=True)
class Binding:
    name: str
    infer: list[Callable]
    inputs: list[Tensor]
    outputs: list[Tensor]
    config: ModelConfig


def embedder_binding(spec: ModelSpec, engines: list[Engine], max_batch: int, delay_us: int) -> Binding:
    def make(engine: Engine) -> Callable:
        @batch
        def infer(faces: np.ndarray) -> dict[str, np.ndarray]:
            return {"embeddings": engine(faces)}

        return infer

    return Binding(
        name=spec.name,
        infer=[make(e) for e in engines],
        inputs=[Tensor(name="faces", dtype=np.uint8, shape=(spec.height, spec.width, 3))],
        outputs=[Tensor(name="embeddings", dtype=np.float32, shape=(spec.dim,))],
        config=ModelConfig(
            max_batch_size=max_batch,
            batcher=DynamicBatcher(max_queue_delay_microseconds=delay_us),
        ),
    )


def detector_binding(detectors: list[Detector], max_batch: int, delay_us: int) -> Binding:
    def make(det: Detector) -> Callable:
        @batch
        def infer(images: np.ndarray) -> dict[str, np.ndarray]:
            return det.detect(images)

        return infer

    return Binding(
        name=DETECTOR_MODEL,
        infer=[make(d) for d in detectors],
        # Any size; Triton batches only requests of equal shape together.
        inputs=[Tensor(name="images", dtype=np.uint8, shape=(-1, -1, 3))],
        outputs=[
            Tensor(name="boxes", dtype=np.float32, shape=(MAX_FACES, 4)),
            Tensor(name="scores", dtype=np.float32, shape=(MAX_FACES,)),
            Tensor(name="landmarks", dtype=np.float32, shape=(MAX_FACES, 5, 2)),
        ],
        config=ModelConfig(
            max_batch_size=max_batch,
            batcher=DynamicBatcher(max_queue_delay_microseconds=delay_us),
        ),
    )
