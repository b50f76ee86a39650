"""Indexer settings, all from environment variables (defaults in brackets)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # INDEXER_ADDRESS [127.0.0.1:50052]: where the gRPC server listens.
    address: str = Field("127.0.0.1:50052", alias="INDEXER_ADDRESS")
    # INDEXER_THREADS [0]: FAISS OpenMP threads; 0 keeps FAISS's default.
    threads: int = Field(0, alias="INDEXER_THREADS")
    log_level: str = Field("INFO", alias="FACESEARCH_LOG_LEVEL")
