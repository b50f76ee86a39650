"""Indexer settings, all from environment variables (defaults in brackets)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # INDEXER_ADDRESS [127.0.0.1:50052]: where the gRPC server listens.
    address: str = Field("127.0.0.1:50052", alias="INDEXER_ADDRESS")
    # INDEXER_METRICS_PORT [9465]: Prometheus /metrics, on INDEXER_ADDRESS's
    # host; 0 turns it off.
    metrics_port: int = Field(9465, alias="INDEXER_METRICS_PORT")
    # DATABASE_URL [postgresql://facesearch@127.0.0.1:5432/facesearch]: the
    # system of record, whose collections this indexer loads and follows.
    database_url: str = Field("postgresql://facesearch@127.0.0.1:5432/facesearch", alias="DATABASE_URL")
    # INDEXER_ADDRESSES [INDEXER_NAME]: every indexer, comma-separated, as the
    # gateway lists them: which collections each holds follows from this list.
    addresses: str = Field("", alias="INDEXER_ADDRESSES")
    # INDEXER_NAME [INDEXER_ADDRESS]: this indexer's entry in INDEXER_ADDRESSES.
    own_name: str = Field("", alias="INDEXER_NAME")
    # INDEXER_REPLICAS [1]: how many indexers hold each collection.
    replicas: int = Field(1, alias="INDEXER_REPLICAS")
    # INDEXER_CATCH_UP_S [5]: how long a search may wait for this indexer to
    # reach the change it needs before it is refused (`behind`).
    catch_up_s: float = Field(5.0, alias="INDEXER_CATCH_UP_S")
    # INDEXER_THREADS [0]: FAISS OpenMP threads; 0 keeps FAISS's default.
    # (OMP_WAIT_POLICY [PASSIVE]: idle ones sleep; set in __init__.py, as
    # libgomp reads it when faiss is imported.)
    threads: int = Field(0, alias="INDEXER_THREADS")
    # INDEXER_DEVICE [auto]: where shards search: auto (the first CUDA device
    # when faiss-gpu is installed and sees one, else the CPU), cpu, or cuda:N.
    device: str = Field("auto", alias="INDEXER_DEVICE")
    # INDEXER_ANN_MIN_FACES [20000]: shards this large get an approximate
    # (IVF) index for FAST search; smaller ones answer FAST exactly.
    ann_min_faces: int = Field(20_000, alias="INDEXER_ANN_MIN_FACES")
    # INDEXER_NPROBE [0]: inverted lists visited per FAST query; 0 chooses a
    # share of the shard's lists (AnnPolicy.nprobe_for), which holds recall
    # as shards grow. FAST's second look (weak best matches) visits three times as many.
    nprobe: int = Field(0, alias="INDEXER_NPROBE", ge=0)
    log_level: str = Field("INFO", alias="FACESEARCH_LOG_LEVEL")

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def name(self) -> str:
        return self.own_name or self.address

    @property
    def indexers(self) -> list[str]:
        listed = [a.strip() for a in self.addresses.split(",") if a.strip()]
        return listed or [self.name]
