"""The indexer over gRPC: the catalog (system of record) and the search."""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common.errors import REASON_KEY

from .errors import ApiError, unavailable

# The indexer's refusals reach API callers as they are: status, message and
# reason (`unknown_collection`, `collection_exists`...).
_PASSED_ON = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT)


class IndexerClient:
    def __init__(self, address: str, timeout_s: float):
        self._channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.max_receive_message_length", 64 << 20),
                # A restarted indexer is used again within seconds, not after
                # gRPC's default backoff of up to two minutes.
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2000),
            ],
        )
        self._stub = pb_grpc.IndexerStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._timeout = timeout_s

    async def ready(self) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def put_collection(self, tenant: str, id: str, name: str, data: bytes, update: bool) -> None:
        await self._call(
            self._stub.PutCollection, pb.PutCollectionRequest(tenant=tenant, id=id, name=name, data=data, update=update)
        )

    async def get_collections(self, tenant: str, ids: list[str]) -> list[pb.Record]:
        return list((await self._call(self._stub.GetCollections, pb.GetRequest(tenant=tenant, ids=ids))).records)

    async def list_collections(self, tenant: str, offset: int, limit: int, name: str = "") -> pb.Records:
        return await self._call(
            self._stub.ListCollections, pb.ListRequest(tenant=tenant, offset=offset, limit=limit, name=name)
        )

    async def delete_collection(self, tenant: str, id: str) -> int:
        return (await self._call(self._stub.DeleteCollection, pb.Ref(tenant=tenant, id=id))).faces

    async def put_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        update: bool,
        faces: list[tuple[str, np.ndarray]] | None = None,
        collections: list[str] | None = None,
        replica: bool = False,
    ) -> None:
        request = pb.PutPersonRequest(tenant=tenant, id=id, data=data, update=update, replica=replica)
        if faces is not None:
            request.set_faces = True
            request.dim = faces[0][1].shape[-1]
            request.faces.extend(pb.Face(face_id=f, vector=v.astype("<f4").tobytes()) for f, v in faces)
        if collections is not None:
            request.set_collections = True
            request.collections.extend(collections)
        await self._call(self._stub.PutPerson, request)

    async def get_persons(self, tenant: str, ids: list[str], with_faces: bool = False) -> list[pb.Record]:
        if not ids:
            return []
        request = pb.GetRequest(tenant=tenant, ids=ids, with_faces=with_faces)
        return list((await self._call(self._stub.GetPersons, request)).records)

    async def list_persons(self, tenant: str, offset: int, limit: int, collection: str) -> pb.Records:
        return await self._call(
            self._stub.ListPersons, pb.ListRequest(tenant=tenant, offset=offset, limit=limit, collection=collection)
        )

    async def delete_person(self, tenant: str, id: str, collection: str = "") -> int:
        return (
            await self._call(
                self._stub.DeletePerson, pb.DeletePersonRequest(tenant=tenant, id=id, collection=collection)
            )
        ).faces

    async def search(
        self, tenant: str, collections: list[str], query: np.ndarray, top_k: int, min_cosine: float, mode: int
    ) -> list[pb.Hit]:
        request = pb.SearchRequest(
            tenant=tenant,
            collections=collections,
            dim=query.shape[-1],
            queries=query.astype("<f4").tobytes(),
            top_k=top_k,
            min_cosine=min_cosine,
            mode=mode,
        )
        return list((await self._call(self._stub.Search, request)).results[0].hits)

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise unavailable("indexer_unavailable", f"the indexer did not answer: {exc.details()}") from None
            if exc.code() in _PASSED_ON:
                reason = dict(exc.trailing_metadata() or ()).get(REASON_KEY, exc.code().name.lower())
                raise ApiError(exc.code(), reason, exc.details()) from None
            raise

    async def close(self) -> None:
        await self._channel.close()
