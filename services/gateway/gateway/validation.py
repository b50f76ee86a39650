"""Checks of request fields that need more than the proto's types."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sized
from datetime import date

from google.protobuf import struct_pb2

from facesearch.indexer.v1 import indexer_pb2

from .errors import invalid
from .records import collection_of_code

MIN_SCORE_RANGE = (0.5, 1.0)  # search/crops, as Verifik's
FULL_IMAGE_SCORE_RANGE = (0.2, 1.0)  # search, compare, verify
DEFAULT_MATCH_SCORE = 0.8
DEFAULT_MAX_RESULTS = 10
MAX_RESULTS_LIMIT = 100
MAX_PROBES = 10
MAX_PERSON_IMAGES = 3
MAX_FULL_IMAGES = 3
MAX_NAME_LENGTH = 256
MAX_TEXT_LENGTH = 4096
SEARCH_MODES = {"FAST": indexer_pb2.FAST, "ACCURATE": indexer_pb2.ACCURATE}
PERSON_STATUSES = ("", "active", "inactive", "pending")  # Verifik's; "" is none given
_ID = re.compile(r"^[0-9a-f]{24}$")


def min_score(
    value: struct_pb2.Value,
    low: float = MIN_SCORE_RANGE[0],
    high: float = MIN_SCORE_RANGE[1],
    field: str = "min_score",
    default: float | None = None,
) -> float:
    """A number or a numeric string in [low, high]; required unless `default`."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        if default is not None:
            return default
        raise invalid(f"missing_{field}", f"{field} is required")
    if kind == "number_value":
        score = value.number_value
    elif kind == "string_value":
        try:
            score = float(value.string_value.strip())
        except ValueError:
            raise invalid(f"invalid_{field}", f"{field} must be a number, got {value.string_value[:40]!r}") from None
    else:
        raise invalid(f"invalid_{field}", f"{field} must be a number, got a {kind.removesuffix('_value')}")
    if not math.isfinite(score) or not low <= score <= high:
        raise invalid(f"invalid_{field}", f"{field} must be between {low:g} and {high:g}, got {score:g}")
    return score


def search_mode(mode: str) -> indexer_pb2.Mode:
    if not mode:
        raise invalid("missing_search_mode", "search_mode is required: FAST or ACCURATE")
    try:
        return SEARCH_MODES[mode]
    except KeyError:
        raise invalid("invalid_search_mode", f"search_mode must be FAST or ACCURATE, got {mode[:40]!r}") from None


def max_results(value: int | None) -> int:
    if value is None:
        return DEFAULT_MAX_RESULTS
    if not 1 <= value <= MAX_RESULTS_LIMIT:
        raise invalid("invalid_max_results", f"max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {value}")
    return value


def page(page: int | None, limit: int | None, default_limit: int = DEFAULT_MAX_RESULTS) -> tuple[int, int]:
    """(page from 1, limit): defaults 1 and `default_limit`; limit at most MAX_RESULTS_LIMIT."""
    page = 1 if page is None else page
    limit = default_limit if limit is None else limit
    if page < 1:
        raise invalid("invalid_page", f"page must be 1 or more, got {page}")
    if not 1 <= limit <= MAX_RESULTS_LIMIT:
        raise invalid("invalid_limit", f"limit must be between 1 and {MAX_RESULTS_LIMIT}, got {limit}")
    return page, limit


def image_count(images: Sized, low: int, high: int, field: str = "images") -> None:
    if not images:
        raise invalid("missing_images", f"{field} is required: at least {low} base64 image")
    if not low <= len(images) <= high:
        raise invalid("too_many_images", f"{field} takes {low} to {high} images, got {len(images)}")


def object_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise invalid("invalid_id", f"{field} must be 24 hexadecimal characters, got {value[:40]!r}")
    return value


def collection_id_of(value: str, field: str) -> str:
    """A collection's id, given its id or its code (a UUID)."""
    if _ID.match(value):
        return value
    id = collection_of_code(value)
    if id is None:
        raise invalid(
            "invalid_id", f"{field} must be a collection id (24 hexadecimal characters) or code, got {value[:40]!r}"
        )
    return id


def searched_collections(collection_id: str) -> list[str]:
    """A search's `collection_id` (an id or a code) as the collections
    searched: that one, or none named (every collection of the caller)."""
    return [collection_id_of(collection_id, "collection_id")] if collection_id else []


def optional_search_mode(mode: str) -> indexer_pb2.Mode:
    """Where a search mode changes nothing (1:1) but Verifik's clients send
    one: checked when given, ACCURATE when not."""
    return search_mode(mode) if mode else indexer_pb2.ACCURATE


def text(value: str, field: str, required: bool = False, limit: int = MAX_TEXT_LENGTH, multiline: bool = False) -> str:
    """Trimmed text: any script, no control characters (but line breaks and
    tabs where `multiline`), at most `limit` characters."""
    value = value.strip()
    if required and not value:
        raise invalid(f"missing_{field}", f"{field} is required")
    if len(value) > limit:
        raise invalid(f"invalid_{field}", f"{field} is longer than {limit} characters")
    allowed = "\t\n\r" if multiline else ""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs") and c not in allowed), None)
    if bad is not None:
        raise invalid(f"invalid_{field}", f"{field} contains a control character (U+{ord(bad):04X})")
    return value


def gender(value: str) -> str:
    value = value.strip().upper()
    if value not in ("", "M", "F"):
        raise invalid("invalid_gender", f"gender must be M or F, got {value[:10]!r}")
    return value


def person_status(value: str) -> bool:
    """Whether Verifik's person `status` filter admits FaceSearch's persons,
    which are all active (enrolled, or deleted for good)."""
    if value not in PERSON_STATUSES:
        raise invalid("invalid_status", f"status must be one of {', '.join(PERSON_STATUSES[1:])}, got {value[:20]!r}")
    return value in ("", "active")


def date_of_birth(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    try:
        born = date.fromisoformat(value[:10])
    except ValueError:
        raise invalid(
            "invalid_date_of_birth", f"date_of_birth must be an ISO date (YYYY-MM-DD), got {value[:40]!r}"
        ) from None
    if born > date.today():
        raise invalid("invalid_date_of_birth", "date_of_birth is in the future")
    return born.isoformat()
