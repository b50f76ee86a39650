from __future__ import annotations

import pytest

from tests import lfw
from tests.stack import Stack


def pytest_collection_modifyitems(config, items):
    # End-to-end tests need the real faces and the MobileFaceNet weights; where
    # ../shared/data is absent (outside this project's CI) they cannot run, and
    # they say so in the skip reason rather than passing vacuously.
    if lfw.available():
        return
    reason = f"needs real faces and weights under {lfw.SHARED_DATA} (absent here)"
    for item in items:
        if "e2e" in item.keywords or "lfw" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack = Stack(
        tmp_path_factory.mktemp("stack"),
        {"FACESEARCH_MODEL": "mobilefacenet-casia", "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET)},
    )
    try:
        stack.start()
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()
