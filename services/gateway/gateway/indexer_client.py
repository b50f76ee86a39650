"""The indexer, over gRPC."""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc

from .errors import unavailable


class IndexerClient:
    def __init__(self, address: str, timeout_s: float):
        self._channel = grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
        self._stub = pb_grpc.IndexerStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._timeout = timeout_s

    async def ready(self) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def add(self, tenant: str, collection_id: str, faces: list[tuple[str, str, np.ndarray]]) -> None:
        dim = faces[0][2].shape[-1]
        request = pb.AddRequest(
            shard=pb.ShardRef(tenant=tenant, collection_id=collection_id), dim=dim,
            faces=[pb.Face(face_id=f, person_id=p, vector=v.astype("<f4").tobytes()) for f, p, v in faces],
        )
        await self._call(self._stub.Add, request)

    async def remove_persons(self, tenant: str, collection_id: str, person_ids: list[str]) -> int:
        request = pb.RemovePersonsRequest(shard=pb.ShardRef(tenant=tenant, collection_id=collection_id),
                                          person_ids=person_ids)
        return (await self._call(self._stub.RemovePersons, request)).removed

    async def search(self, tenant: str, collection_ids: list[str], query: np.ndarray, top_k: int,
                     min_cosine: float, mode: int) -> list[pb.Hit]:
        request = pb.SearchRequest(
            shards=[pb.ShardRef(tenant=tenant, collection_id=c) for c in collection_ids],
            dim=query.shape[-1], query=query.astype("<f4").tobytes(), top_k=top_k, min_score=min_cosine, mode=mode,
        )
        return list((await self._call(self._stub.Search, request)).hits)

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise unavailable("indexer_unavailable", f"the indexer did not answer: {exc.details()}") from None
            raise

    async def close(self) -> None:
        await self._channel.close()
