"""Indexer gRPC server (grpc.aio) with health and reflection."""

from __future__ import annotations

import asyncio
import signal

import faiss
import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common import logs

from .config import Settings
from .registry import DimensionMismatch, Registry

SERVICE = pb.DESCRIPTOR.services_by_name["Indexer"].full_name


def _key(ref: pb.ShardRef) -> tuple[str, str]:
    return (ref.tenant, ref.collection_id)


def _vectors(data: bytes, dim: int, count: int, context_field: str) -> np.ndarray:
    vectors = np.frombuffer(data, dtype="<f4")
    if dim == 0 or vectors.size != dim * count:
        raise ValueError(f"{context_field}: expected {count} x {dim} float32 values, got {vectors.size}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{context_field}: vectors must be finite")
    return vectors.reshape(count, dim)


class IndexerService(pb_grpc.IndexerServicer):
    def __init__(self, registry: Registry):
        self.registry = registry

    async def Add(self, request: pb.AddRequest, context: grpc.aio.ServicerContext) -> pb.AddResponse:
        if not request.shard.tenant or not request.shard.collection_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "shard.tenant and shard.collection_id are required")
        faces = list(request.faces)
        try:
            vectors = np.concatenate([_vectors(f.vector, request.dim, 1, f"faces[{i}].vector")
                                      for i, f in enumerate(faces)]) if faces else np.zeros((0, request.dim), np.float32)
            shard = self.registry.writable(_key(request.shard), request.dim)
        except (ValueError, DimensionMismatch) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        shard.add([f.face_id for f in faces], [f.person_id for f in faces], vectors)
        return pb.AddResponse(added=len(faces), total=shard.faces)

    async def RemovePersons(self, request: pb.RemovePersonsRequest, context) -> pb.RemoveResponse:
        shard = self.registry.get(_key(request.shard))
        removed = shard.remove_persons(list(request.person_ids)) if shard else 0
        return pb.RemoveResponse(removed=removed)

    async def Search(self, request: pb.SearchRequest, context) -> pb.SearchResponse:
        try:
            query = _vectors(request.query, request.dim, 1, "query")[0]
            hits = self.registry.search([_key(s) for s in request.shards], query,
                                        max(1, request.top_k), request.min_score)
        except (ValueError, DimensionMismatch) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.SearchResponse(hits=[
            pb.Hit(person_id=h.hit.person_id, face_id=h.hit.face_id, collection_id=h.collection_id, score=h.hit.score)
            for h in hits
        ])

    async def DropShard(self, request: pb.ShardRef, context) -> pb.RemoveResponse:
        return pb.RemoveResponse(removed=self.registry.drop(_key(request)))

    async def ShardStats(self, request: pb.ShardRef, context) -> pb.ShardStatsResponse:
        shard = self.registry.get(_key(request))
        if shard is None:
            return pb.ShardStatsResponse()
        return pb.ShardStatsResponse(faces=shard.faces, persons=shard.persons, dim=shard.dim)


async def serve(settings: Settings) -> None:
    log = logs.setup("indexer", settings.log_level)
    if settings.threads:
        faiss.omp_set_num_threads(settings.threads)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    pb_grpc.add_IndexerServicer_to_server(IndexerService(Registry()), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(settings.address)
    await server.start()
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving", extra={"address": settings.address, "port": port})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    log.info("stopped")


def main() -> None:
    asyncio.run(serve(Settings()))


if __name__ == "__main__":
    main()
