"""Collections: create, retrieve, list, update, delete."""

from __future__ import annotations

import logging
import math

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import collection_message, signature
from .cache import PersonCache
from .catalog import Catalog
from .errors import unknown_collection
from .records import Collection, new_id, now_iso

log = logging.getLogger(__name__)


def pagination(page: int, limit: int, total: int) -> pb.Pagination:
    return pb.Pagination(page=page, limit=limit, total=total, pages=math.ceil(total / limit))


class Collections:
    def __init__(self, catalog: Catalog, cache: PersonCache, shards: int = 1):
        self.catalog = catalog
        self.cache = cache
        self.shards = shards  # of each new collection

    async def create(self, tenant: str, request: pb.CreateCollectionRequest) -> pb.CollectionResponse:
        name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        description = validation.text(request.description, "description", multiline=True)
        stamp = now_iso()
        collection = Collection(new_id(), name, description, stamp, stamp)
        await self.catalog.put_collection(
            tenant, collection.id, name, collection.to_bytes(), update=False, shards=self.shards
        )
        log.info("collection created", extra={"tenant": tenant, "collection": collection.id})
        return pb.CollectionResponse(id=new_id(), data=collection_message(collection), signature=signature())

    async def get(self, tenant: str, id: str) -> Collection:
        id = validation.collection_id_of(id, "id")
        found = await self.catalog.get_collections(tenant, [id])
        if not found:
            raise unknown_collection(id)
        return Collection.from_bytes(found[0].data)

    async def retrieve(self, tenant: str, request: pb.RetrieveCollectionRequest) -> pb.CollectionResponse:
        collection = await self.get(tenant, request.id)
        return pb.CollectionResponse(id=new_id(), data=collection_message(collection), signature=signature())

    async def list(self, tenant: str, request: pb.ListCollectionsRequest) -> pb.CollectionListResponse:
        # Without a page, every collection up to the maximum, as Verifik's
        # list (which has no pages) answers.
        paged = request.HasField("page")
        page, limit = validation.page(
            request.page if paged else None,
            request.limit if request.HasField("limit") else None,
            validation.DEFAULT_MAX_RESULTS if paged else validation.MAX_RESULTS_LIMIT,
        )
        found = await self.catalog.list_collections(tenant, (page - 1) * limit, limit)
        return pb.CollectionListResponse(
            id=new_id(),
            data=[collection_message(Collection.from_bytes(r.data)) for r in found.records],
            pagination=pagination(page, limit, found.total),
            signature=signature(),
        )

    async def update(self, tenant: str, request: pb.UpdateCollectionRequest) -> pb.CollectionResponse:
        collection = await self.get(tenant, request.id)
        if request.HasField("name"):
            collection.name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        if request.HasField("description"):
            collection.description = validation.text(request.description, "description", multiline=True)
        collection.modified_date = now_iso()
        await self.catalog.put_collection(tenant, collection.id, collection.name, collection.to_bytes(), update=True)
        return pb.CollectionResponse(id=new_id(), data=collection_message(collection), signature=signature())

    async def delete(self, tenant: str, request: pb.DeleteCollectionRequest) -> pb.CollectionResponse:
        """Answers the collection as it was (Verifik's answer), marked deleted."""
        collection = await self.get(tenant, request.id)
        written = await self.catalog.delete_collection(tenant, collection.id)
        await self.cache.forget(tenant, written.persons, written.seq)  # their answers list the collection
        log.info("collection deleted", extra={"tenant": tenant, "collection": collection.id, "faces": written.faces})
        return pb.CollectionResponse(
            id=new_id(), data=collection_message(collection, deleted=True), signature=signature()
        )
