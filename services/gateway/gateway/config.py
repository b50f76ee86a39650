"""Gateway settings, all from environment variables (defaults in brackets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from facesearch_common import tokens
from facesearch_common.specs import DEFAULT_MODEL

from .image_urls import UrlPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # GATEWAY_ADDRESS [127.0.0.1:50051]: where the public gRPC service listens.
    address: str = Field("127.0.0.1:50051", alias="GATEWAY_ADDRESS")
    # GATEWAY_METRICS_PORT [9464]: Prometheus /metrics, on GATEWAY_ADDRESS's
    # host; 0 turns it off.
    metrics_port: int = Field(9464, alias="GATEWAY_METRICS_PORT")
    # EMBEDDER_URL [127.0.0.1:8001]: Triton's gRPC endpoint (the crop
    # embedder and the face detector).
    embedder_url: str = Field("127.0.0.1:8001", alias="EMBEDDER_URL")
    # INDEXER_ADDRESS [127.0.0.1:50052]: the indexer's gRPC endpoint.
    indexer_address: str = Field("127.0.0.1:50052", alias="INDEXER_ADDRESS")
    # INDEXER_ADDRESSES [INDEXER_ADDRESS]: several indexers, comma-separated.
    # Which of them hold a collection follows from this list (rendezvous
    # hashing): indexers read the same list, in any order.
    indexer_addresses: str = Field("", alias="INDEXER_ADDRESSES")
    # INDEXER_REPLICAS [1]: how many indexers hold each collection (the
    # indexers' own setting must agree).
    indexer_replicas: int = Field(1, alias="INDEXER_REPLICAS")
    # COLLECTION_SHARDS [1]: the shards a new collection is split into (fixed
    # at creation), each placed on INDEXER_REPLICAS indexers of its own: more
    # than one spreads a large collection's search over indexers.
    collection_shards: int = Field(1, ge=1, le=256, alias="COLLECTION_SHARDS")
    # DATABASE_URL [postgresql://facesearch@127.0.0.1:5432/facesearch]: the
    # system of record.
    database_url: str = Field("postgresql://facesearch@127.0.0.1:5432/facesearch", alias="DATABASE_URL")
    # REDIS_URL [redis://127.0.0.1:6379/0]
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # FACESEARCH_MODEL [facenet-vggface2]: must be the model the embedder serves.
    model: str = Field(DEFAULT_MODEL, alias="FACESEARCH_MODEL")
    # FACESEARCH_JWKS [.data/keys/jwks.json]: public keys that sign API tokens
    # (the same file Envoy's jwt_authn reads).
    jwks: Path = Field(Path(".data/keys/jwks.json"), alias="FACESEARCH_JWKS")
    # FACESEARCH_JWT_ISSUER [facesearch] / FACESEARCH_JWT_AUDIENCE [facesearch-api]
    jwt_issuer: str = Field(tokens.ISSUER, alias="FACESEARCH_JWT_ISSUER")
    jwt_audience: str = Field(tokens.AUDIENCE, alias="FACESEARCH_JWT_AUDIENCE")
    # GATEWAY_EMBEDDER_CALLS [2]: the most crop-embedder calls one gateway
    # process keeps in flight; requests that find them all busy wait and go
    # together in the next call (gateway/crop_calls.py). 0: no limit, each
    # request its own call.
    embedder_calls: int = Field(2, ge=0, alias="GATEWAY_EMBEDDER_CALLS")
    # GATEWAY_RPC_TIMEOUT_S [30]: deadline for each call to the embedder.
    rpc_timeout_s: float = Field(30.0, alias="GATEWAY_RPC_TIMEOUT_S")
    # GATEWAY_INDEXER_TIMEOUT_S [1]: deadline for one indexer's part of a
    # search, after which another holder is asked: a hung indexer costs a
    # search this much. Raise it where one search takes longer (10M faces
    # ACCURATE on a CPU).
    indexer_timeout_s: float = Field(1.0, alias="GATEWAY_INDEXER_TIMEOUT_S")
    # FACESEARCH_IMAGE_URL_HOSTS [empty: off]: hosts that image fields may
    # name by HTTPS URL, comma-separated: names or IP literals (listed by
    # name, a host may resolve to a private address), `*.domain` patterns and
    # `*` (any host; public addresses only). gateway/image_urls.py says how
    # each fetch is checked.
    image_url_hosts: str = Field("", alias="FACESEARCH_IMAGE_URL_HOSTS")
    # FACESEARCH_IMAGE_URL_TIMEOUT_S [5]: all of one request's fetches together.
    image_url_timeout_s: float = Field(5.0, gt=0, alias="FACESEARCH_IMAGE_URL_TIMEOUT_S")
    # FACESEARCH_IMAGE_URL_MAX_BYTES [16 MiB, the API's body limit]: all of
    # one request's fetched images together.
    image_url_max_bytes: int = Field(16 << 20, gt=0, alias="FACESEARCH_IMAGE_URL_MAX_BYTES")
    # FACESEARCH_IMAGE_URL_CA_FILE [unset: certifi's bundle]: the certificate
    # authorities trusted for image URLs, a PEM file (a private CA).
    image_url_ca_file: Path | None = Field(None, alias="FACESEARCH_IMAGE_URL_CA_FILE")
    log_level: str = Field("INFO", alias="FACESEARCH_LOG_LEVEL")

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def image_urls(self) -> UrlPolicy:
        return UrlPolicy.parse(self.image_url_hosts, self.image_url_timeout_s, self.image_url_max_bytes)

    @property
    def indexers(self) -> list[str]:
        listed = [a.strip() for a in self.indexer_addresses.split(",") if a.strip()]
        return listed or [self.indexer_address]
