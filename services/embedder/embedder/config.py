"""Embedder settings, all from environment variables (defaults in brackets)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from facesearch_common.specs import DEFAULT_MODEL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # FACESEARCH_MODEL [facenet-vggface2]: which model spec to serve.
    model: str = Field(DEFAULT_MODEL, alias="FACESEARCH_MODEL")
    # FACESEARCH_WEIGHTS [unset]: weights file; unset means cache, then download.
    weights: Path | None = Field(None, alias="FACESEARCH_WEIGHTS")
    # FACESEARCH_YUNET_WEIGHTS [unset]: YuNet's ONNX file (the crop embedder's
    # face finder); unset means cache, then download.
    detector_weights: Path | None = Field(None, alias="FACESEARCH_YUNET_WEIGHTS")
    # FACESEARCH_DATA_DIR [.data]: local state; weights are cached under models/.
    data_dir: Path = Field(Path(".data"), alias="FACESEARCH_DATA_DIR")
    # EMBEDDER_DEVICE [auto]: auto (CUDA when present), cpu, cuda, cuda:N.
    device: str = Field("auto", alias="EMBEDDER_DEVICE")
    # EMBEDDER_BIND [127.0.0.1]: address Triton listens on (0.0.0.0 in a pod).
    bind: str = Field("127.0.0.1", alias="EMBEDDER_BIND")
    # Triton's own ports [8001 gRPC, 8000 HTTP, 8002 metrics].
    grpc_port: int = Field(8001, alias="EMBEDDER_GRPC_PORT")
    http_port: int = Field(8000, alias="EMBEDDER_HTTP_PORT")
    metrics_port: int = Field(8002, alias="EMBEDDER_METRICS_PORT")
    # Dynamic batching: largest batch and how long a request may wait for company.
    max_batch_size: int = Field(64, alias="EMBEDDER_MAX_BATCH")
    # The delay [unset]: 2000 on CUDA, where big batches pay; 0 on the CPU,
    # where requests queue behind busy instances anyway and a lone one lost
    # up to 2 ms waiting (bench/history/2026-11-25-to-2026-12-05.md, Load).
    max_queue_delay_us: int | None = Field(None, alias="EMBEDDER_QUEUE_DELAY_US")
    # Crop-embedder instances (parallel executions, each its own process);
    # 0: on CPU one per core, single-threaded, on GPU one.
    instances: int = Field(0, alias="EMBEDDER_INSTANCES")
    # Torch / ONNX Runtime threads per face-model instance; 0: one with the
    # automatic instances on CPU, else the engine's default.
    threads: int = Field(0, alias="EMBEDDER_THREADS")
    # Face-detector instances (whole photos); each uses every core, its idle threads sleeping.
    detector_instances: int = Field(1, alias="EMBEDDER_DETECTOR_INSTANCES")
    # EMBEDDER_ENGINE [auto]: the crop embedder's engine: the spec's cpu_engine
    # on CPU and torch on CUDA (auto), or onnxruntime or torch explicitly.
    engine: str = Field("auto", alias="EMBEDDER_ENGINE")
    # EMBEDDER_PRECISION [auto]: the PyTorch engine's arithmetic: fp16 on
    # CUDA and fp32 on CPU (auto), or fp32, fp16, bf16.
    precision: str = Field("auto", alias="EMBEDDER_PRECISION")
    log_level: str = Field("INFO", alias="FACESEARCH_LOG_LEVEL")

    def face_instances(self) -> tuple[int, int]:
        """(instances, threads per instance) of the crop embedder. On CPU, one
        single-threaded instance per core: one instance with every core's
        threads (ONNX Runtime, not spinning) answered a lone crop no sooner
        (19.3 ms both) and served less at 8 and 32 in flight
        (bench/history/2026-11-25-to-2026-12-05.md, Search, 2026-12-02)."""
        if self.instances:
            return self.instances, self.threads
        if self.resolved_device().startswith("cuda"):
            return 1, self.threads
        return len(os.sched_getaffinity(0)), self.threads or 1

    def queue_delay_us(self) -> int:
        if self.max_queue_delay_us is not None:
            return self.max_queue_delay_us
        return 2000 if self.resolved_device().startswith("cuda") else 0

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
