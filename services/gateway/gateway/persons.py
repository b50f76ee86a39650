"""Persons: create, retrieve, list, update, delete.

The catalog (PostgreSQL) is written first and is the truth; the cache
forgets the person after every write so that the next search reads the new
state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from facesearch.v1 import facesearch_pb2 as pb

from . import validation
from .answers import person_message, signature
from .cache import PersonCache
from .catalog import Catalog, Record
from .collections import pagination
from .errors import unknown_person
from .images import ImageReader, to_jpeg_base64
from .pipeline import FacePipeline
from .records import Person, Thumbnail, new_face_id, new_id, now_iso

log = logging.getLogger(__name__)


class Persons:
    def __init__(self, pipeline: FacePipeline, catalog: Catalog, cache: PersonCache, reader: ImageReader):
        self.pipeline = pipeline
        self.catalog = catalog
        self.cache = cache
        self.reader = reader

    async def _faces(self, images: Sequence[str]) -> list[tuple[Thumbnail, npt.NDArray[np.float32]]]:
        validation.image_count(images, 1, validation.MAX_PERSON_IMAGES)
        pixels = await self.reader.pixels(images, "images")
        faces = await self.pipeline.embed_photos(pixels, "images", one_person=True)
        return [(Thumbnail(new_face_id(), to_jpeg_base64(f.crop)), f.vector) for f in faces]

    @staticmethod
    def _collections(given: Iterable[str]) -> list[str]:
        """Collection ids, given as ids or codes, each once."""
        return list(dict.fromkeys(validation.collection_id_of(c, f"collections[{i}]") for i, c in enumerate(given)))

    async def _write(
        self,
        tenant: str,
        person: Person,
        update: bool,
        faces: list[tuple[Thumbnail, npt.NDArray[np.float32]]] | None = None,
        collections: list[str] | None = None,
    ) -> None:
        written = await self.catalog.put_person(
            tenant,
            person.id,
            person.details(),
            update,
            faces=[(t.id, v) for t, v in faces] if faces is not None else None,
            collections=collections,
        )
        await self.cache.forget(tenant, written.persons, written.seq)

    async def create(self, tenant: str, request: pb.CreatePersonRequest) -> pb.PersonResponse:
        name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        # Optional, as in Verifik's API: a person in no collection is enrolled
        # (verify finds it by id) and searched once it joins one.
        collections = self._collections(request.collections)
        stamp = now_iso()
        person = Person(
            id=new_id(),
            name=name,
            notes=validation.text(request.notes, "notes", multiline=True),
            gender=validation.gender(request.gender),
            date_of_birth=validation.date_of_birth(request.date_of_birth),
            nationality=validation.text(request.nationality, "nationality", limit=validation.MAX_NAME_LENGTH),
            collections=collections,
            create_date=stamp,
            modified_date=stamp,
        )
        faces = await self._faces(request.images)
        person.thumbnails = [t for t, _ in faces]
        await self._write(tenant, person, update=False, faces=faces, collections=collections)
        log.info("person created", extra={"tenant": tenant, "person": person.id, "faces": len(faces)})
        return pb.PersonResponse(id=new_id(), data=person_message(person), signature=signature())

    async def record(self, tenant: str, id: str, with_faces: bool = False) -> Record:
        """The catalog's record of person `id` (with its face vectors if asked)."""
        validation.object_id(id, "id")
        found = await self.catalog.get_persons(tenant, [id], with_faces=with_faces)
        if not found:
            raise unknown_person(id)
        return found[0]

    async def get(self, tenant: str, id: str) -> Person:
        found = await self.record(tenant, id)
        return Person.from_record(found.data, found.collections)

    async def retrieve(self, tenant: str, request: pb.RetrievePersonRequest) -> pb.PersonResponse:
        person = await self.get(tenant, request.id)
        return pb.PersonResponse(id=new_id(), data=person_message(person), signature=signature())

    async def list(self, tenant: str, request: pb.ListPersonsRequest) -> pb.PersonListResponse:
        page, limit = validation.page(
            request.page if request.HasField("page") else None, request.limit if request.HasField("limit") else None
        )
        collection = validation.collection_id_of(request.collection, "collection") if request.collection else ""
        if not validation.person_status(request.status):
            return pb.PersonListResponse(id=new_id(), pagination=pagination(page, limit, 0), signature=signature())
        found = await self.catalog.list_persons(tenant, (page - 1) * limit, limit, collection)
        persons = [person_message(Person.from_record(r.data, r.collections)) for r in found.records]
        return pb.PersonListResponse(
            id=new_id(), data=persons, pagination=pagination(page, limit, found.total), signature=signature()
        )

    async def update(self, tenant: str, request: pb.UpdatePersonRequest) -> pb.PersonResponse:
        person = await self.get(tenant, request.id)
        if request.HasField("name"):
            person.name = validation.text(request.name, "name", required=True, limit=validation.MAX_NAME_LENGTH)
        if request.HasField("gender"):
            person.gender = validation.gender(request.gender)
        if request.HasField("date_of_birth"):
            person.date_of_birth = validation.date_of_birth(request.date_of_birth)
        if request.HasField("nationality"):
            person.nationality = validation.text(request.nationality, "nationality", limit=validation.MAX_NAME_LENGTH)
        if request.HasField("notes"):
            person.notes = validation.text(request.notes, "notes", multiline=True)
        collections = self._collections(request.collections) if request.collections else None
        faces = await self._faces(request.images) if request.images else None
        if faces is not None:
            person.thumbnails = [t for t, _ in faces]
        if collections is not None:
            person.collections = collections
        person.modified_date = now_iso()
        await self._write(tenant, person, update=True, faces=faces, collections=collections)
        log.info("person updated", extra={"tenant": tenant, "person": person.id, "faces_replaced": faces is not None})
        return pb.PersonResponse(id=new_id(), data=person_message(person), signature=signature())

    async def delete(self, tenant: str, request: pb.DeletePersonRequest) -> pb.DeleteResponse:
        validation.object_id(request.id, "id")
        collection = validation.collection_id_of(request.collection, "collection") if request.collection else ""
        written = await self.catalog.delete_person(tenant, request.id, collection)
        await self.cache.forget(tenant, written.persons, written.seq)
        log.info(
            "person deleted",
            extra={"tenant": tenant, "person": request.id, "collection": collection, "faces": written.faces},
        )
        return pb.DeleteResponse(
            id=new_id(), data=pb.Deleted(id=request.id, deleted=True, _id=request.id), signature=signature()
        )
