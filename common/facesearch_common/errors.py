"""What the services agree on about errors."""

# Trailer carrying an error's stable, machine-readable reason (e.g.
# `unknown_collection`): sent by the indexer to the gateway, by the gateway to
# its callers, and read by Envoy to build REST error bodies.
REASON_KEY = "facesearch-error"

# Reasons that both the indexer and the gateway give, with their messages.
# A reason a single module gives is written where that module raises it.
UNKNOWN_COLLECTION = "unknown_collection"
UNKNOWN_PERSON = "unknown_person"


def unknown_collection(id: str) -> tuple[str, str]:
    """(reason, message) for a collection id the caller does not have."""
    return UNKNOWN_COLLECTION, f"collection {id!r} does not exist"


def unknown_person(id: str) -> tuple[str, str]:
    """(reason, message) for a person id the caller does not have."""
    return UNKNOWN_PERSON, f"person {id!r} does not exist"
