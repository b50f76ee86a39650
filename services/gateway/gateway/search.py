"""Search 1:N with face crops or with full images."""

from __future__ import annotations

import numpy as np

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import person_message, signature
from .cache import PersonCache
from .images import decode_base64, decode_crop, decode_image
from .pipeline import EmbeddedFace, FacePipeline, fuse
from .placement import Indexers
from .records import Person, new_id


class Searcher:
    def __init__(self, pipeline: FacePipeline, catalog: Indexers, cache: PersonCache):
        self.pipeline = pipeline
        self.catalog = catalog
        self.cache = cache

    async def search_crops(self, tenant: str, request: pb.SearchCropsRequest) -> pb.SearchResponse:
        min_score = validation.min_score(request.min_score)
        validation.image_count(request.images, 1, validation.MAX_PROBES)
        crops = [decode_crop(text, f"images[{i}]") for i, text in enumerate(request.images)]
        faces = await self.pipeline.embed_crops(crops, "images")
        return await self._search(tenant, request, faces, min_score)

    async def search_images(self, tenant: str, request: pb.SearchRequest) -> pb.SearchResponse:
        """Full images: the largest face of each (MTCNN), then as with crops."""
        min_score = validation.min_score(request.min_score, *validation.FULL_IMAGE_SCORE_RANGE)
        validation.image_count(request.images, 1, validation.MAX_FULL_IMAGES)
        images = [decode_image(decode_base64(t, f"images[{i}]"), f"images[{i}]") for i, t in enumerate(request.images)]
        faces = await self.pipeline.embed_photos(images, "images")
        return await self._search(tenant, request, faces, min_score)

    async def _search(
        self,
        tenant: str,
        request: pb.SearchCropsRequest | pb.SearchRequest,
        faces: list[EmbeddedFace],
        min_score: float,
    ) -> pb.SearchResponse:
        mode = validation.search_mode(request.search_mode)
        top_k = validation.max_results(request.max_results if request.HasField("max_results") else None)
        collections = [request.collection_id] if request.collection_id else []
        query = fuse(np.stack([f.vector for f in faces]))
        calibration = self.pipeline.spec.calibration
        # The index filters on the pairwise threshold, a lower bound of the
        # search's own: the score falls with the number of faces searched,
        # known once the search is made.
        found = await self.catalog.search(tenant, collections, query, top_k, calibration.cosine(min_score), mode)
        scored = [(h, round(calibration.score(h.cosine, found.faces), 6)) for h in found.hits]
        passed = [(h, score) for h, score in scored if score >= min_score]
        persons = await self.persons(tenant, [h.person_id for h, _ in passed])
        data = [
            person_message(persons[h.person_id], score=score) for h, score in passed if h.person_id in persons
        ]  # a person deleted meanwhile is skipped
        return pb.SearchResponse(id=new_id(), data=data, signature=signature(), faces_searched=found.faces)

    async def persons(self, tenant: str, ids: list[str]) -> dict[str, Person]:
        """From the cache, and from the catalog for what it lacks (then cached)."""
        found = await self.cache.get(tenant, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            loaded = [
                Person.from_record(r.data, r.collections) for r in await self.catalog.get_persons(tenant, missing)
            ]
            await self.cache.put(tenant, loaded)
            found.update((p.id, p) for p in loaded)
        return found
