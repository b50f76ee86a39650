"""Building the API's answer messages from records. Where Verifik names a
value differently (`_id`, `createdAt`, `updatedAt`), both names are answered
(docs/verifik.md)."""

from __future__ import annotations

from facesearch.v1 import facesearch_pb2 as pb

from .records import Collection, Person, collection_code, signature_time

SIGNATURE_MESSAGE = "Certified by FaceSearch"


def signature() -> pb.Signature:
    return pb.Signature(message=SIGNATURE_MESSAGE, dateTime=signature_time())


def person_message(person: Person, score: float | None = None) -> pb.Person:
    message = pb.Person(
        id=person.id,
        name=person.name,
        notes=person.notes,
        gender=person.gender,
        thumbnails=[pb.Thumbnail(id=t.id, thumbnail=t.thumbnail) for t in person.thumbnails],
        collections=person.collections,
        create_date=person.create_date,
        nationality=person.nationality,
        date_of_birth=person.date_of_birth,
        modified_date=person.modified_date,
        _id=person.id,
        createdAt=person.create_date,
        updatedAt=person.modified_date,
    )
    if score is not None:
        message.score = score
    return message


def collection_message(collection: Collection, deleted: bool = False) -> pb.Collection:
    return pb.Collection(
        **collection.to_dict(),
        _id=collection.id,
        code=collection_code(collection.id),
        createdAt=collection.create_date,
        updatedAt=collection.modified_date,
        deleted=deleted,
    )
