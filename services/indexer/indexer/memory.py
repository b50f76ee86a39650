"""Freed heap handed back to the operating system.

glibc keeps what a process frees for its next allocations. An indexer frees
a lot at two moments and then allocates little: after loading its shards
(asyncpg's rows, 50,000 at a time) and after building a FAST index (the
snapshot, k-means' buffers in the build thread's arena). Kept, that was
about 30 B a face of resident memory at 10M faces that nothing used
(663 B a face once the FAST indexes were built, 632 after the first
queries let glibc trim some, 2026-12-06); malloc_trim hands it back at once
(635 B a face with every FAST index built, the next run: bench/RESULTS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


def hand_back() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
