from __future__ import annotations

import pytest

from devkit import lfw
from devkit.client import Rest, parallel
from devkit.image_host import ImageHost
from devkit.stack import Stack


@pytest.fixture(scope="session")
def image_host(tmp_path_factory):
    """A real HTTPS server on loopback with a test CA, which the stack may
    fetch image URLs from (by the name `localhost`)."""
    with ImageHost.running(tmp_path_factory.mktemp("image-host")) as host:
        yield host


@pytest.fixture(scope="session")
def stack(tmp_path_factory, image_host):
    """The real stack (Envoy, gateway, tritonserver, indexer, redis-server) on
    free loopback ports, serving MobileFaceNet; stopped by pid at the end.
    Image URLs are fetched from `localhost` only, trusting the test CA."""
    env = {
        **lfw.evaluation_model(),
        "FACESEARCH_IMAGE_URL_HOSTS": "localhost",
        "FACESEARCH_IMAGE_URL_CA_FILE": str(image_host.ca_file),
    }
    with Stack(tmp_path_factory.mktemp("stack"), env).running() as stack:
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
