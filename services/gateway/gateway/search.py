"""Search 1:N with face crops or with full images."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from facesearch.indexer.v1 import indexer_pb2
from facesearch.v1 import facesearch_pb2 as pb

from . import metrics, validation
from .answers import person_message, signature
from .cache import PersonCache
from .catalog import Catalog, Scope
from .errors import unknown_collection
from .images import MAX_CROP_SIDE, ImageReader
from .indexer_client import ShardSearch
from .pipeline import EmbeddedFace, FacePipeline, fuse
from .records import new_id
from .scopes import ScopeReads
from .scoring import Scoring
from .shards import Shards

T = TypeVar("T")
U = TypeVar("U")


async def both(first: Coroutine[Any, Any, T], second: Coroutine[Any, Any, U]) -> tuple[T, U]:
    """Both results, run concurrently. The first's error wins (bad input is
    reported before anything else), and whatever still runs is cancelled."""
    tasks = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        return await tasks[0], await tasks[1]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved, so never logged as lost


class Searcher:
    def __init__(
        self,
        pipeline: FacePipeline,
        catalog: Catalog,
        shards: Shards,
        cache: PersonCache,
        reader: ImageReader,
        scoring: Scoring,
    ):
        self.reader = reader
        self.scoring = scoring
        self.pipeline = pipeline
        self.catalog = catalog
        self.shards = shards
        self.cache = cache
        self.scopes = ScopeReads(catalog.scope)
        self._embedding = 0  # searches between being asked and their faces embedded

    async def search_crops(self, tenant: str, request: pb.SearchCropsRequest) -> pb.SearchResponse:
        min_score = validation.min_score(request.min_score)
        validation.image_count(request.images, 1, validation.MAX_PROBES)
        crops = await self.reader.pixels(request.images, "images", max_side=MAX_CROP_SIDE)
        return await self._search(tenant, request, lambda: self.pipeline.embed_crops(crops, "images"), min_score)

    async def search_images(self, tenant: str, request: pb.SearchRequest) -> pb.SearchResponse:
        """Full images: the largest face of each, then as with crops."""
        min_score = validation.min_score(request.min_score, *validation.FULL_IMAGE_SCORE_RANGE)
        validation.image_count(request.images, 1, validation.MAX_FULL_IMAGES)
        images = await self.reader.pixels(request.images, "images")
        return await self._search(tenant, request, lambda: self.pipeline.embed_photos(images, "images"), min_score)

    async def _search(
        self,
        tenant: str,
        request: pb.SearchCropsRequest | pb.SearchRequest,
        embed: Callable[[], Coroutine[Any, Any, list[EmbeddedFace]]],
        min_score: float,
    ) -> pb.SearchResponse:
        mode = validation.search_mode(request.search_mode)
        top_k = validation.max_results(request.max_results if request.HasField("max_results") else None)
        collections = validation.searched_collections(request.collection_id)
        faces, scope = await self.embedded_in_scope(tenant, collections, embed)
        query = fuse(np.stack([f.vector for f in faces]))
        data, searched = await self.find(tenant, scope, query, top_k, min_score, mode)
        return pb.SearchResponse(id=new_id(), data=data, signature=signature(), faces_searched=searched)

    async def find(
        self,
        tenant: str,
        scope: Scope,
        query: npt.NDArray[np.float32],
        top_k: int,
        min_score: float,
        mode: indexer_pb2.Mode,
    ) -> tuple[list[pb.Person], int]:
        """The persons `query` matches in `scope` at `min_score`, best first,
        and how many faces were searched."""
        calibration = self.scoring.calibration
        # The index filters on the pairwise threshold, a lower bound of the
        # search's own: the score falls with the number of faces searched,
        # known once the search is made.
        with metrics.STAGE.labels("indexer").time():
            found = await self.shards.search(
                ShardSearch(
                    tenant,
                    scope.shards,
                    query,
                    top_k,
                    calibration.cosine(min_score),
                    mode,
                    scope.head,
                    calibration.weak_cosine,
                )
            )
        scored = [(h, round(calibration.score(h.cosine, found.faces), 6)) for h in found.hits]
        passed = [(h, score) for h, score in scored if score >= min_score]
        persons = await self.cache.read(tenant, {h.person_id: h.version for h, _ in passed})
        data = [
            person_message(persons[h.person_id], score=score) for h, score in passed if h.person_id in persons
        ]  # a person deleted meanwhile is skipped
        return data, found.faces

    async def embedded_in_scope(
        self, tenant: str, collections: list[str], embed: Callable[[], Coroutine[Any, Any, T]]
    ) -> tuple[T, Scope]:
        """The faces, and the scope as a read sent after the search was asked
        saw it (scopes.py): the indexers answer from at least that log
        position, so an answer never misses a write acknowledged before it.
        Alone, the search reads while its faces are embedded; behind others
        waiting on the model, it reads after, sharing one read with them."""
        ticket = self.scopes.ticket()
        self._embedding += 1
        try:
            if self._embedding == 1:
                return await both(embed(), self.scope(tenant, collections, ticket))
            faces = await embed()
        finally:
            self._embedding -= 1
        return faces, await self.scope(tenant, collections, ticket)

    async def scope(self, tenant: str, collections: list[str], ticket: int) -> Scope:
        """The log's end and the searched collections (all of the tenant's
        without `collections`), from a read sent after `ticket`;
        unknown_collection if one is not there."""
        scope = await self.scopes.read(tenant, collections, ticket)
        missing = [c for c in collections if c not in scope.collections]
        if missing:
            raise unknown_collection(missing[0])
        return scope
