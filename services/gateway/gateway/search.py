"""Search 1:N with face crops or with full images."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from facesearch.indexer.v1 import indexer_pb2
from facesearch.v1 import facesearch_pb2 as pb
from facesearch_common.database import UNREACHABLE

from . import metrics, validation
from .answers import person_message, signature
from .cache import PersonCache
from .catalog import Catalog, Scope
from .errors import unknown_collection
from .images import MAX_CROP_SIDE, ImageReader
from .indexer_client import ShardSearch
from .pipeline import EmbeddedFace, FacePipeline, fuse
from .records import new_id
from .scoring import Scoring
from .shards import Shards

SCOPES_KEPT = 10_000
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
        # The last scope read per (tenant, collections): while the database
        # is unreachable, searches of loaded shards answer from it.
        self._scopes: dict[tuple[str, tuple[str, ...]], Scope] = {}

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
        # The log's end is read once the search is asked, while the faces are
        # embedded: the indexers answer from at least there, so an answer
        # never misses a write acknowledged before it.
        faces, scope = await both(embed(), self.scope(tenant, collections))
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
                ShardSearch(tenant, scope.shards, query, top_k, calibration.cosine(min_score), mode, scope.head)
            )
        scored = [(h, round(calibration.score(h.cosine, found.faces), 6)) for h in found.hits]
        passed = [(h, score) for h, score in scored if score >= min_score]
        persons = await self.cache.read(tenant, {h.person_id: h.version for h, _ in passed})
        data = [
            person_message(persons[h.person_id], score=score) for h, score in passed if h.person_id in persons
        ]  # a person deleted meanwhile is skipped
        return data, found.faces

    async def scope(self, tenant: str, collections: list[str]) -> Scope:
        """The log's end and the searched collections (all of the tenant's
        without `collections`); unknown_collection if one is not there."""
        scope = await self._read_scope(tenant, collections)
        missing = [c for c in collections if c not in scope.collections]
        if missing:
            raise unknown_collection(missing[0])
        return scope

    async def _read_scope(self, tenant: str, collections: list[str]) -> Scope:
        key = (tenant, tuple(collections))
        try:
            with metrics.STAGE.labels("database").time():
                scope = await self.catalog.scope(tenant, collections)
        except UNREACHABLE:
            if key not in self._scopes:
                raise
            return self._scopes[key]  # no write can be acknowledged meanwhile, so none is missed
        if len(self._scopes) >= SCOPES_KEPT:
            self._scopes.pop(next(iter(self._scopes)))
        self._scopes[key] = scope
        return scope
