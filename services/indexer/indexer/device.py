"""Where shards search: the CPU, or a CUDA device through faiss-gpu.

On the CPU (the default) a shard searches its own master copy for ACCURATE,
and for FAST an IVF index of fast-scan codes whose candidates the master
copy rescores (rescored.py). On a GPU the shard's host index stays its
master copy (the exact answer of last resort, and the source of every
build), and searches go to replicas on the device: an exact GpuIndexFlatIP
and, once the shard is large, a GpuIndexIVFFlat. GPU indexes cannot remove
ids, so the replicas are `Tombstoned` and are rebuilt from the master copy
before their dead rows outgrow one search (see replica.py).

`Replicated` is that GPU path with the replicas left in host memory: the
same code, which the unit tests run on machines without a GPU; `Gpu` only
changes where the replicas live and where IVF training runs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np
import numpy.typing as npt

from .replica import Tombstoned
from .rescored import Rescored, VectorsOf, empty_fast_scan

# faiss's k-selection limit on GPU (GPU_MAX_SELECTION_K without cuVS).
GPU_MAX_K = 2048


@dataclass
class AnnSnapshot:
    vectors: npt.NDArray[np.float32]
    ids: npt.NDArray[np.int64]
    dim: int
    lists: int

    def training_sample(self) -> npt.NDArray[np.float32]:
        # 64 points per list is plenty for k-means and bounds training time.
        most = 64 * self.lists
        if len(self.vectors) <= most:
            return self.vectors
        # numpy types a fancy-indexed array as Any.
        sample: npt.NDArray[np.float32] = self.vectors[
            np.random.default_rng(0).choice(len(self.vectors), most, replace=False)
        ]
        return sample


def empty_ivf(snapshot: AnnSnapshot) -> faiss.IndexIVFFlat:
    # IVF-Flat keeps full vectors in its lists, so the scores it returns are
    # exact for the candidates it visits; GPU memory bandwidth makes reading
    # them cheap there.
    quantizer = faiss.IndexFlatIP(snapshot.dim)
    return faiss.IndexIVFFlat(quantizer, snapshot.dim, snapshot.lists, faiss.METRIC_INNER_PRODUCT)


class Device(Protocol):
    name: str
    # Removed faces an index may hold before it must be rebuilt.
    removal_slack: float

    def exact_replica(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> Tombstoned | None: ...
    def build_ann(self, snapshot: AnnSnapshot) -> faiss.Index: ...
    def install_ann(
        self, built: faiss.Index, snapshot: AnnSnapshot, vectors_of: VectorsOf
    ) -> Rescored | Tombstoned: ...


class Cpu:
    """Shards search their own host indexes."""

    name = "cpu"
    # Removed faces an index may hold before it must be rebuilt: the FAST
    # index skips them at little cost, so only the shard's policy decides.
    removal_slack = math.inf

    def exact_replica(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> Tombstoned | None:
        return None

    def build_ann(self, snapshot: AnnSnapshot) -> faiss.IndexIVFPQFastScan:
        """Trains and fills an IVF fast-scan index on the CPU; runs off the event loop."""
        index = empty_fast_scan(snapshot.dim, snapshot.lists)
        index.train(snapshot.training_sample())
        index.add_with_ids(snapshot.vectors, snapshot.ids)
        return index

    def install_ann(self, built: faiss.IndexIVFPQFastScan, snapshot: AnnSnapshot, vectors_of: VectorsOf) -> Rescored:
        return Rescored(built, vectors_of)


class Replicated:
    """Searches Tombstoned replicas of the shard's indexes (host memory here;
    device memory in `Gpu`)."""

    name = "replicated"
    max_k = GPU_MAX_K
    # Leave half the k-selection budget for k itself.
    removal_slack: float = GPU_MAX_K // 2

    def place(self, index: faiss.Index) -> faiss.Index:
        """Where a replica lives: host memory here."""
        return index

    def train_and_fill(self, index: faiss.Index, snapshot: AnnSnapshot) -> faiss.Index:
        index.train(snapshot.training_sample())
        index.add(snapshot.vectors)
        return index

    def exact_replica(self, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]) -> Tombstoned:
        index = self.place(faiss.IndexFlatIP(vectors.shape[1]))
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, np.float32))
        return Tombstoned(index, ids, self.max_k)

    def build_ann(self, snapshot: AnnSnapshot) -> faiss.IndexIVFFlat:
        # Rows are numbered 0..n-1 in snapshot order; install maps them to ids.
        return self.train_and_fill(empty_ivf(snapshot), snapshot)

    def install_ann(self, built: faiss.IndexIVFFlat, snapshot: AnnSnapshot, vectors_of: VectorsOf) -> Tombstoned:
        return Tombstoned(self.place(built), snapshot.ids, self.max_k)


class Gpu(Replicated):
    """Replicas in one CUDA device's memory.

    A StandardGpuResources must not be used from two threads at once, so the
    event loop (searches, writes, installs) has one and each build thread its
    own; a finished IVF index comes back to host memory and is placed on the
    device with the event loop's resources when it is installed.
    """

    def __init__(self, device: int) -> None:
        self.device = device
        self.name = f"cuda:{device}"
        self._serving = faiss.StandardGpuResources()
        self._builders = threading.local()

    def place(self, index: faiss.Index) -> faiss.Index:
        return faiss.index_cpu_to_gpu(self._serving, self.device, index)

    def train_and_fill(self, index: faiss.Index, snapshot: AnnSnapshot) -> faiss.Index:
        resources = getattr(self._builders, "resources", None)
        if resources is None:
            resources = self._builders.resources = faiss.StandardGpuResources()
        on_device = faiss.index_cpu_to_gpu(resources, self.device, index)
        super().train_and_fill(on_device, snapshot)
        return faiss.index_gpu_to_cpu(on_device)


def gpus() -> int:
    """CUDA devices faiss can use: 0 with faiss-cpu or without a GPU."""
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def choose(setting: str) -> Device:
    """INDEXER_DEVICE: `auto` (the first GPU when faiss-gpu sees one, else
    the CPU), `cpu`, or `cuda:N`."""
    setting = setting.strip().lower()
    if setting == "cpu" or (setting == "auto" and gpus() == 0):
        return Cpu()
    if setting == "auto":
        return Gpu(0)
    if setting.startswith("cuda:") and setting[5:].isdigit():
        device = int(setting[5:])
        if device >= gpus():
            raise ValueError(
                f"INDEXER_DEVICE={setting}: faiss sees {gpus()} CUDA device(s)"
                + ("" if hasattr(faiss, "StandardGpuResources") else " (faiss-cpu is installed)")
            )
        return Gpu(device)
    raise ValueError(f"INDEXER_DEVICE={setting!r}: expected auto, cpu or cuda:N")
