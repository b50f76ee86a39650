"""Search 1:N with face crops."""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import person_message, signature
from .errors import not_found
from .images import decode_crop
from .indexer_client import IndexerClient
from .pipeline import FacePipeline, fuse
from .records import new_id
from .store import Store

log = logging.getLogger(__name__)


class Searcher:
    def __init__(self, pipeline: FacePipeline, indexer: IndexerClient, store: Store):
        self.pipeline = pipeline
        self.indexer = indexer
        self.store = store

    async def search_crops(self, tenant: str, request: pb.SearchCropsRequest) -> pb.SearchResponse:
        min_score = validation.min_score(request.min_score)
        mode = validation.search_mode(request.search_mode)
        top_k = validation.max_results(request.max_results if request.HasField("max_results") else None)
        validation.image_count(request.images, 1, validation.MAX_PROBES)
        collections = await self._collections(tenant, request.collection_id)
        crops = [decode_crop(text, f"images[{i}]") for i, text in enumerate(request.images)]

        faces = await self.pipeline.embed_one_face_each(crops, "images")
        query = fuse(np.stack([f.vector for f in faces]))
        spec = self.pipeline.spec
        hits = await self.indexer.search(tenant, collections, query, top_k, spec.cosine(min_score), mode) if collections else []
        persons = await self.store.persons(tenant, [h.person_id for h in hits])
        data = []
        for hit in hits:
            person = persons.get(hit.person_id)
            if person is None:  # deleted between the index answer and now
                continue
            data.append(person_message(person, score=round(spec.score(hit.score), 6)))
        return pb.SearchResponse(id=new_id(), data=data, signature=signature())

    async def _collections(self, tenant: str, collection_id: str) -> list[str]:
        if not collection_id:
            return await self.store.collection_ids(tenant)
        if await self.store.collection(tenant, collection_id) is None:
            raise not_found("unknown_collection", f"collection {collection_id[:64]!r} does not exist")
        return [collection_id]
