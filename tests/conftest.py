from __future__ import annotations

import pytest

from tools import lfw
from tools.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The real stack (Envoy, gateway, tritonserver, indexer, redis-server) on
    free loopback ports, serving MobileFaceNet; stopped by pid at the end."""
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
