"""FAISS's OpenMP threads sleep between searches (indexer/__init__.py):
left to libgomp's default, each search's threads spin about 4 ms after it."""

from __future__ import annotations

import os
import subprocess
import sys

# Searches on two OpenMP threads, each followed by an idle pause: the CPU
# the process burns per pause (a spinning thread's), in milliseconds.
IDLE_CPU_MS = """
import sys, time
import numpy as np
if sys.argv[1] == "package":
    import indexer.shard  # as the server imports faiss
import faiss
faiss.omp_set_num_threads(2)
index = faiss.IndexFlatIP(128)
index.add(np.random.default_rng(0).random((2000, 128), dtype=np.float32))
queries = np.ones((64, 128), np.float32)
idle = []
for _ in range(11):
    index.search(queries, 5)
    before = time.process_time()
    time.sleep(0.02)
    idle.append(time.process_time() - before)
print(1e3 * float(np.median(idle[1:])))
"""


def idle_cpu_ms(imported: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", IDLE_CPU_MS, imported], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def test_faiss_threads_sleep_once_the_indexer_is_imported() -> None:
    assert idle_cpu_ms("package") < 0.5


def test_faiss_alone_spins() -> None:
    # What the test above guards against: without the package, the same
    # searches leave a thread spinning.
    assert idle_cpu_ms("faiss") > 1.5
