"""Detect, compare and verify: one image's faces, and 1:1 decisions, in
Verifik's answer shapes (docs/verifik.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from facesearch.v1 import facesearch_pb2 as pb

from . import canvas, validation
from .answers import person_message, signature
from .errors import unknown_collection, unknown_person
from .faces import Face
from .images import ImageReader, to_jpeg_base64
from .persons import Persons
from .pipeline import FacePipeline, fuse
from .records import Person, new_id
from .search import Searcher

# The detector's five points, in its order, by Verifik's names.
LANDMARKS = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


def detected_face(face: Face, thumbnail: str, persons: Sequence[pb.Person] = ()) -> pb.DetectedFace:
    x1, y1, x2, y2 = (float(v) for v in face.box)
    score = round(face.score, 6)
    return pb.DetectedFace(
        box=pb.Box(top=round(y1), left=round(x1), right=round(x2), bottom=round(y2)),
        detection_score=score,
        landmarks=pb.Landmarks(
            **{name: [round(float(x)), round(float(y))] for name, (x, y) in zip(LANDMARKS, face.landmarks, strict=True)}
        ),
        thumbnail=thumbnail,
        persons=persons,
        bounding_box=pb.BoundingBox(x=round(x1, 1), y=round(y1, 1), width=round(x2 - x1, 1), height=round(y2 - y1, 1)),
        confidence=score,
    )


class Matching:
    def __init__(self, pipeline: FacePipeline, persons: Persons, searcher: Searcher, reader: ImageReader):
        self.pipeline = pipeline
        self.persons = persons
        self.searcher = searcher
        self.reader = reader

    async def _probe(self, texts: Sequence[str], field: str) -> npt.NDArray[np.float32]:
        """1 to 3 full images of one person -> one unit query vector."""
        validation.image_count(texts, 1, validation.MAX_FULL_IMAGES, field)
        images = await self.reader.pixels(texts, field)
        faces = await self.pipeline.embed_photos(images, field)
        return fuse(np.stack([f.vector for f in faces]))

    def _score(self, cosine: float) -> float:
        return round(self.searcher.scoring.calibration.score(cosine), 6)  # 1:1: the pairwise score

    async def detect(self, tenant: str, request: pb.DetectRequest) -> pb.DetectResponse:
        """Every face, largest first; with min_score, each searched for."""
        searching = request.min_score.WhichOneof("kind") not in (None, "null_value")
        if searching:
            min_score = validation.min_score(request.min_score, *validation.FULL_IMAGE_SCORE_RANGE)
            mode = validation.optional_search_mode(request.search_mode)
            top_k = validation.max_results(request.max_results if request.HasField("max_results") else None)
            collections = validation.searched_collections(request.collection_id)
        image = await self.reader.one(request.image, "image")
        faces = (await self.pipeline.detect([image]))[0]
        cuts = [canvas.cut(image, face.box) for face in faces]
        found: list[list[pb.Person]] = [[] for _ in faces]
        if searching and faces:
            embedded, scope = await self.searcher.embedded_in_scope(
                tenant, collections, lambda: self.pipeline.embed_cuts(cuts)
            )
            # A face the crop embedder cannot align is answered, unsearched.
            searched = [i for i, e in enumerate(embedded) if e.found]
            answers = await asyncio.gather(
                *(self.searcher.find(tenant, scope, embedded[i].vector, top_k, min_score, mode) for i in searched)
            )
            for i, (persons, _) in zip(searched, answers, strict=True):
                found[i] = persons
        return pb.DetectResponse(
            id=new_id(),
            data=[
                detected_face(face, to_jpeg_base64(cut), persons)
                for face, cut, persons in zip(faces, cuts, found, strict=True)
            ],
            signature=signature(),
        )

    async def compare(self, request: pb.CompareRequest) -> pb.CompareResponse:
        threshold = validation.min_score(
            request.compare_min_score,
            *validation.FULL_IMAGE_SCORE_RANGE,
            field="compare_min_score",
            default=validation.DEFAULT_MATCH_SCORE,
        )
        validation.optional_search_mode(request.search_mode)
        probe = await self._probe(request.probe, "probe")
        gallery = await self._probe(request.gallery, "gallery")
        score = self._score(float(probe @ gallery))
        passed = score >= threshold
        return pb.CompareResponse(
            id=new_id(),
            data=pb.Comparison(
                score=score,
                match=passed,
                compare_min_score=threshold,
                result=pb.ComparisonResult(score=score, compare_min_score=threshold, passed=passed),
            ),
            signature=signature(),
        )

    async def verify(self, tenant: str, request: pb.VerifyRequest) -> pb.VerifyResponse:
        threshold = validation.min_score(
            request.min_score, *validation.FULL_IMAGE_SCORE_RANGE, default=validation.DEFAULT_MATCH_SCORE
        )
        validation.optional_search_mode(request.search_mode)
        collection = (
            validation.collection_id_of(request.collection_id, "collection_id") if request.collection_id else ""
        )
        stored = await self.persons.record(tenant, request.id, with_faces=True)
        if collection and collection not in stored.collections:
            if not await self.persons.catalog.get_collections(tenant, [collection]):
                raise unknown_collection(collection)
            raise unknown_person(request.id, f"is not in collection {collection!r}")
        person = Person.from_record(stored.data, stored.collections)
        probe = await self._probe(request.images, "images")
        enrolled = np.stack([np.frombuffer(f.vector, "<f4") for f in stored.faces])
        score = self._score(float((enrolled @ probe).max()))
        passed = score >= threshold
        verification = pb.Verification(score=score, min_score=threshold, person=person_message(person), passed=passed)
        if passed:
            verification.match.CopyFrom(person_message(person, score=score))
        return pb.VerifyResponse(id=new_id(), data=verification, signature=signature())
