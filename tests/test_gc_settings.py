"""The services' garbage-collector settings (facesearch_common.gc_settings),
applied once each service is up: run in a child process, so this one's
collector is left as it was."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, weakref
from facesearch_common import gc_settings

kept = [object() for _ in range(1000)]  # alive when the service settles
gc_settings.settle()
print(gc.get_threshold()[0] == gc_settings.YOUNG, gc.get_freeze_count() >= len(kept))

class Node:
    pass

node = Node()
node.self = node  # a cycle made after settling: still the collector's
gone = weakref.ref(node)
del node
gc.collect()
print(gone() is None)
"""


def test_settling_freezes_what_is_alive_and_still_collects_later_cycles() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert probe.stdout.split() == ["True", "True", "True"]
