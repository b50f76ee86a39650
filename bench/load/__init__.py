"""search/crops under load: `make load` (__main__.py) and its top row alone (cpu.py)."""

from __future__ import annotations

from pathlib import Path

from bench.load.payloads import write
from devkit import lfw
from devkit.client import Rest, parallel
from devkit.stack import Stack


def enrolled(stack: Stack) -> dict[str, Path]:
    """The 300 lfw-dev identities enrolled in a new collection on `stack`,
    and the ghz configs that search it (payloads.write), by call name."""
    rest = Rest(stack.rest, stack.token("load"))
    collection = rest.collection("load")
    parallel(lambda n: rest.enroll(n, lfw.photos(n)[0], [collection]), lfw.identities())
    return write(stack.grpc_target, stack.token("load", ttl_s=7200), collection, stack.data_dir / "ghz")
