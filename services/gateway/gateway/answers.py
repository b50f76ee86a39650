"""Building the API's answer messages from records."""

from __future__ import annotations

from facesearch.v1 import facesearch_pb2 as pb

from .records import Collection, Person, now_iso

SIGNATURE_MESSAGE = "Certified by FaceSearch"


def signature() -> pb.Signature:
    return pb.Signature(message=SIGNATURE_MESSAGE, dateTime=now_iso())


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
    )
    if score is not None:
        message.score = score
    return message


def collection_message(collection: Collection) -> pb.Collection:
    return pb.Collection(**collection.to_dict())
