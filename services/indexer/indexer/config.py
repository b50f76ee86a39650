"""Indexer settings, all from environment variables (defaults in brackets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # INDEXER_ADDRESS [127.0.0.1:50052]: where the gRPC server listens.
    address: str = Field("127.0.0.1:50052", alias="INDEXER_ADDRESS")
    # FACESEARCH_DATA_DIR [.data]: the catalog lives in indexer/catalog.sqlite3 under it.
    data_dir: Path = Field(Path(".data"), alias="FACESEARCH_DATA_DIR")
    # INDEXER_THREADS [0]: FAISS OpenMP threads; 0 keeps FAISS's default.
    threads: int = Field(0, alias="INDEXER_THREADS")
    # INDEXER_DEVICE [auto]: where shards search: auto (the first CUDA device
    # when faiss-gpu is installed and sees one, else the CPU), cpu, or cuda:N.
    device: str = Field("auto", alias="INDEXER_DEVICE")
    # INDEXER_ANN_MIN_FACES [20000]: shards this large get an approximate
    # (IVF) index for FAST search; smaller ones answer FAST exactly.
    ann_min_faces: int = Field(20_000, alias="INDEXER_ANN_MIN_FACES")
    # INDEXER_NPROBE [384]: inverted lists visited per FAST query.
    nprobe: int = Field(384, alias="INDEXER_NPROBE")
    log_level: str = Field("INFO", alias="FACESEARCH_LOG_LEVEL")
