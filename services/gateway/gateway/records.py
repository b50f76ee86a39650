"""Collections and persons as the gateway stores and answers them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone


def now_iso() -> str:
    """UTC, millisecond precision, as Verifik writes dates."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """24 hex characters, the shape of Verifik's (MongoDB) ids."""
    return secrets.token_hex(12)


def new_face_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Collection:
    id: str
    name: str
    description: str
    create_date: str
    modified_date: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Thumbnail:
    id: str          # also the face id in the index
    thumbnail: str   # base64 JPEG


@dataclass
class Person:
    id: str
    name: str
    notes: str = ""
    gender: str = ""
    date_of_birth: str = ""
    nationality: str = ""
    collections: list[str] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    create_date: str = ""
    modified_date: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Person":
        data = dict(data)
        data["thumbnails"] = [Thumbnail(**t) for t in data.get("thumbnails", [])]
        return cls(**data)
