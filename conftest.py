"""Project-wide pytest hooks."""

from __future__ import annotations

import pytest

from tools import lfw


def pytest_collection_modifyitems(config, items):
    # Tests marked `lfw` read real faces and weights from ../shared/data. Where
    # that folder is absent (outside this project's CI) they cannot run, and
    # they say so in the skip reason rather than passing vacuously.
    if lfw.available():
        return
    reason = f"needs real faces and weights under {lfw.SHARED_DATA} (absent here)"
    for item in items:
        if "lfw" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
