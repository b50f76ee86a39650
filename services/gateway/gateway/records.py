"""Collections and persons as the gateway stores and answers them."""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    """UTC, millisecond precision, as Verifik writes dates."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def signature_time(moment: datetime | None = None) -> str:
    """UTC as Verifik's signatures write it: "September 29, 2023 11:55 PM"."""
    if moment is None:
        # Every answer carries it, and it changes once a minute.
        return _minute_text(int(time.time() // 60))
    hour = moment.hour % 12 or 12
    return f"{moment:%B} {moment.day}, {moment.year} {hour}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


@functools.lru_cache(maxsize=2)
def _minute_text(minute: int) -> str:
    return signature_time(datetime.fromtimestamp(minute * 60, UTC))


def new_id() -> str:
    """24 hex characters, the shape of Verifik's (MongoDB) ids."""
    return secrets.token_hex(12)


def collection_code(id: str) -> str:
    """A collection's `code`: its 24-hex id as a UUID (version 8, the
    application-defined layout), so that a code names its collection with no
    lookup: ID[0:12]-ID[12:16]-80ID[16:18]-80ID[18:20]-ID[20:24]0000."""
    return f"{id[:8]}-{id[8:12]}-80{id[12:14]}-80{id[14:16]}-{id[16:24]}0000"


_CODE = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{4})-80([0-9a-f]{2})-80([0-9a-f]{2})-([0-9a-f]{8})0000$")


def collection_of_code(code: str) -> str | None:
    """The id a `collection_code` stands for; None for any other string."""
    match = _CODE.match(code.lower())
    return "".join(match.groups()) if match else None


def new_face_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Collection:
    id: str
    name: str
    description: str
    create_date: str
    modified_date: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Collection:
        return cls(**json.loads(data))


@dataclass
class Thumbnail:
    id: str  # also the face id in the index
    thumbnail: str  # base64 JPEG


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, **override: Any) -> Person:
        fields = {**json.loads(text), **override}
        fields["thumbnails"] = [Thumbnail(**t) for t in fields.get("thumbnails", [])]
        return cls(**fields)

    def details(self) -> bytes:
        """What the catalog keeps as opaque data: all but the membership,
        which the catalog keeps itself."""
        data = self.to_dict()
        data.pop("collections")
        return json.dumps(data).encode()

    @classmethod
    def from_record(cls, data: bytes, collections: Iterable[str]) -> Person:
        return cls.from_json(data, collections=list(collections))
