"""Creating collections and persons."""

from __future__ import annotations

import asyncio
import logging

import grpc

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import collection_message, person_message, signature
from .errors import ApiError, invalid, not_found
from .images import decode_base64, decode_image, to_jpeg_base64
from .indexer_client import IndexerClient
from .pipeline import FacePipeline
from .records import Collection, Person, Thumbnail, new_face_id, new_id, now_iso
from .store import Store

log = logging.getLogger(__name__)


class Resources:
    def __init__(self, pipeline: FacePipeline, indexer: IndexerClient, store: Store):
        self.pipeline = pipeline
        self.indexer = indexer
        self.store = store

    async def create_collection(self, tenant: str, request: pb.CreateCollectionRequest) -> pb.CollectionResponse:
        name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        description = validation.text(request.description, "description")
        stamp = now_iso()
        collection = Collection(new_id(), name, description, stamp, stamp)
        existing = await self.store.create_collection(tenant, collection)
        if existing is not None:
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, "collection_exists",
                           f"a collection named {name[:64]!r} already exists (id {existing})")
        log.info("collection created", extra={"tenant": tenant, "collection": collection.id})
        return pb.CollectionResponse(id=new_id(), data=collection_message(collection), signature=signature())

    async def create_person(self, tenant: str, request: pb.CreatePersonRequest) -> pb.PersonResponse:
        name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        validation.image_count(request.images, 1, validation.MAX_PERSON_IMAGES)
        if not request.collections:
            raise invalid("missing_collections", "collections is required: at least one collection id")
        collections = list(dict.fromkeys(request.collections))
        missing = await self.store.missing_collections(tenant, collections)
        if missing:
            raise not_found("unknown_collection", f"collection {missing[0][:64]!r} does not exist")
        stamp = now_iso()
        person = Person(
            id=new_id(), name=name, notes=validation.text(request.notes, "notes"),
            gender=validation.gender(request.gender), date_of_birth=validation.date_of_birth(request.date_of_birth),
            nationality=validation.text(request.nationality, "nationality", limit=validation.MAX_NAME_LENGTH),
            collections=collections, create_date=stamp, modified_date=stamp,
        )
        images = [decode_image(decode_base64(t, f"images[{i}]"), f"images[{i}]") for i, t in enumerate(request.images)]
        faces = await self.pipeline.embed_one_face_each(images, "images")
        person.thumbnails = [Thumbnail(new_face_id(), to_jpeg_base64(f.aligned)) for f in faces]

        # The record goes first: a face in the index always has its person.
        await self.store.put_person(tenant, person)
        entries = [(t.id, person.id, f.vector) for t, f in zip(person.thumbnails, faces)]
        try:
            await asyncio.gather(*(self.indexer.add(tenant, c, entries) for c in collections))
        except BaseException:
            await asyncio.gather(*(self.indexer.remove_persons(tenant, c, [person.id]) for c in collections),
                                 return_exceptions=True)
            await self.store.delete_person(tenant, person.id)
            raise
        log.info("person created", extra={"tenant": tenant, "person": person.id, "faces": len(faces)})
        return pb.PersonResponse(id=new_id(), data=person_message(person), signature=signature())
