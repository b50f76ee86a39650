from __future__ import annotations

import pytest

from devkit import lfw
from devkit.client import Rest, parallel
from devkit.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The real stack (Envoy, gateway, tritonserver, indexer, redis-server) on
    free loopback ports, serving MobileFaceNet; stopped by pid at the end."""
    with Stack(tmp_path_factory.mktemp("stack"), lfw.evaluation_model()).running() as stack:
        yield stack


@pytest.fixture(scope="session")
def rest(stack) -> Rest:
    return Rest(stack.rest, stack.token())


@pytest.fixture(scope="session")
def gallery(rest) -> dict:
    """Every lfw-dev identity enrolled from its first photo, in one collection.
    Shared by modules: tests that change persons make their own."""
    collection = rest.collection("lfw-dev")

    def enroll(name: str) -> tuple[str, str]:
        person = rest.enroll(
            name,
            lfw.photos(name)[0],
            [collection],
            gender="M",
            nationality="US",
            notes="lfw-dev",
            date_of_birth="1960-01-02",
        )
        return person["id"], name

    return {"collection": collection, "names": dict(parallel(enroll, lfw.identities()))}
