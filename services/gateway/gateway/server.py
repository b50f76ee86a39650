"""Gateway gRPC server (grpc.aio) with health and reflection.

Health follows the dependencies that answers need: SERVING once the
embedder's models and the indexer answer, NOT_SERVING while either does not.
Redis is a cache: without it answers come from the catalog, a little slower.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from facesearch.v1 import facesearch_pb2 as pb
from facesearch.v1 import facesearch_pb2_grpc as pb_grpc
from facesearch_common import logs
from facesearch_common.specs import get_spec

from .api import FaceSearchService
from .auth import Authenticator
from .cache import PersonCache
from .collections import Collections
from .config import Settings
from .embedder_client import EmbedderClient
from .matching import Matching
from .persons import Persons
from .pipeline import FacePipeline
from .placement import Indexers
from .search import Searcher

SERVICE = pb.DESCRIPTOR.services_by_name["FaceSearch"].full_name
HEALTH_INTERVAL_S = 2.0
MAX_MESSAGE_BYTES = 32 << 20


async def watch_health(health_servicer, embedder: EmbedderClient, indexer: Indexers, log) -> None:
    serving = None
    while True:
        ok = await embedder.ready() and await indexer.ready()
        if ok != serving:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", SERVICE):
                await health_servicer.set(name, status)
            log.info("health", extra={"serving": ok})
            serving = ok
        await asyncio.sleep(HEALTH_INTERVAL_S)


async def serve(settings: Settings) -> None:
    log = logs.setup("gateway", settings.log_level)
    spec = get_spec(settings.model)
    embedder = EmbedderClient(settings.embedder_url, spec, settings.rpc_timeout_s, settings.detector_url or None)
    indexer = Indexers.connect(settings.indexers, settings.rpc_timeout_s)
    cache = PersonCache(settings.redis_url)
    pipeline = FacePipeline(embedder)

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    persons = Persons(pipeline, indexer, cache)
    service = FaceSearchService(
        Searcher(pipeline, indexer, cache),
        Collections(indexer),
        persons,
        Authenticator.from_jwks_file(settings.jwks, settings.jwt_issuer, settings.jwt_audience),
        Matching(pipeline, persons),
    )
    pb_grpc.add_FaceSearchServicer_to_server(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(settings.address)
    await server.start()
    log.info(
        "serving",
        extra={"address": settings.address, "port": port, "model": spec.name, "indexers": len(indexer.clients)},
    )

    watcher = asyncio.create_task(watch_health(health_servicer, embedder, indexer, log))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    watcher.cancel()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    await asyncio.gather(embedder.close(), indexer.close(), cache.close(), return_exceptions=True)
    log.info("stopped")


def main() -> None:
    asyncio.run(serve(Settings()))


if __name__ == "__main__":
    main()
