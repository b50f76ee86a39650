"""Detect, compare and verify: one image's faces, and 1:1 decisions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import person_message, signature
from .faces import Face
from .images import decode_base64, decode_image
from .persons import Persons
from .pipeline import FacePipeline, fuse
from .records import Person, new_id

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def detected_face(face: Face) -> pb.DetectedFace:
    x1, y1, x2, y2 = (float(v) for v in face.box)
    return pb.DetectedFace(
        bounding_box=pb.BoundingBox(x=round(x1, 1), y=round(y1, 1), width=round(x2 - x1, 1), height=round(y2 - y1, 1)),
        confidence=round(face.score, 6),
        landmarks=pb.Landmarks(
            **{
                name: pb.Point(x=round(float(p[0]), 1), y=round(float(p[1]), 1))
                for name, p in zip(LANDMARKS, face.landmarks, strict=True)
            }
        ),
    )


class Matching:
    def __init__(self, pipeline: FacePipeline, persons: Persons):
        self.pipeline = pipeline
        self.persons = persons

    async def _probe(self, texts: Sequence[str], field: str) -> npt.NDArray[np.float32]:
        """1 to 3 full images of one person -> one unit query vector."""
        validation.image_count(texts, 1, validation.MAX_FULL_IMAGES, field)
        images = [decode_image(decode_base64(t, f"{field}[{i}]"), f"{field}[{i}]") for i, t in enumerate(texts)]
        faces = await self.pipeline.embed_photos(images, field)
        return fuse(np.stack([f.vector for f in faces]))

    def _score(self, cosine: float) -> float:
        return round(self.pipeline.spec.calibration.score(cosine), 6)  # 1:1: the pairwise score

    async def detect(self, request: pb.DetectRequest) -> pb.DetectResponse:
        image = decode_image(decode_base64(request.image, "image"), "image")
        faces = (await self.pipeline.detect([image]))[0]
        return pb.DetectResponse(
            id=new_id(),
            data=pb.Detection(faces=[detected_face(f) for f in faces], face_count=len(faces)),
            signature=signature(),
        )

    async def compare(self, request: pb.CompareRequest) -> pb.CompareResponse:
        threshold = validation.min_score(
            request.compare_min_score,
            *validation.FULL_IMAGE_SCORE_RANGE,
            field="compare_min_score",
            default=validation.DEFAULT_MATCH_SCORE,
        )
        probe = await self._probe(request.probe, "probe")
        gallery = await self._probe(request.gallery, "gallery")
        score = self._score(float(probe @ gallery))
        return pb.CompareResponse(
            id=new_id(),
            data=pb.Comparison(score=score, match=score >= threshold, compare_min_score=threshold),
            signature=signature(),
        )

    async def verify(self, tenant: str, request: pb.VerifyRequest) -> pb.VerifyResponse:
        threshold = validation.min_score(
            request.min_score, *validation.FULL_IMAGE_SCORE_RANGE, default=validation.DEFAULT_MATCH_SCORE
        )
        stored = await self.persons.record(tenant, request.id, with_faces=True)
        person = Person.from_record(stored.data, stored.collections)
        probe = await self._probe(request.images, "images")
        enrolled = np.stack([np.frombuffer(f.vector, "<f4") for f in stored.faces])
        score = self._score(float((enrolled @ probe).max()))
        return pb.VerifyResponse(
            id=new_id(),
            data=pb.Verification(
                match=score >= threshold, score=score, min_score=threshold, person=person_message(person)
            ),
            signature=signature(),
        )
