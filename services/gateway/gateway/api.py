"""The public gRPC service: each RPC hands its request to a domain module and
turns ApiError into a proper gRPC status."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from facesearch.v1 import facesearch_pb2 as pb
from facesearch.v1 import facesearch_pb2_grpc as pb_grpc
from facesearch_common.database import UNREACHABLE

from . import metrics
from .admin import Admin
from .auth import Authenticator
from .collections import Collections
from .errors import ApiError, unavailable
from .matching import Matching
from .persons import Persons
from .search import Searcher

log = logging.getLogger(__name__)

_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)


def _measured(rpc: str, code: grpc.StatusCode, started: float) -> float:
    """Records a call's outcome; its milliseconds, for the log."""
    seconds = time.perf_counter() - started
    metrics.REQUESTS.labels(rpc, code.name).inc()
    metrics.LATENCY.labels(rpc).observe(seconds)
    return round(seconds * 1e3, 1)


def rpc(
    method: Callable[[FaceSearchService, str, _Request], Awaitable[_Response]],
) -> Callable[..., Awaitable[_Response]]:
    """A tenant's call: the token's subject is handed to `method`."""
    return _handler(method, admin=False)


def admin_rpc(
    method: Callable[[FaceSearchService, str, _Request], Awaitable[_Response]],
) -> Callable[..., Awaitable[_Response]]:
    """An operator's call: only an admin token may make it."""
    return _handler(method, admin=True)


def _handler(
    method: Callable[[FaceSearchService, str, _Request], Awaitable[_Response]], admin: bool
) -> Callable[..., Awaitable[_Response]]:
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(
        self: FaceSearchService, request: _Request, context: grpc.aio.ServicerContext[_Request, _Response]
    ) -> _Response:
        started = time.perf_counter()
        tenant = None
        try:
            try:
                metadata = context.invocation_metadata()
                tenant = self.auth.admin(metadata) if admin else self.auth.tenant(metadata)
                response = await method(self, tenant, request)
            except UNREACHABLE as exc:
                raise unavailable(
                    "database_unavailable", "the database did not answer: the write may not have been made; retry it"
                ) from exc
        except ApiError as exc:
            ms = _measured(name, exc.code, started)
            log.info(
                "rpc failed",
                extra={"rpc": name, "tenant": tenant, "code": exc.code.name, "reason": exc.reason, "ms": ms},
            )
            await context.abort_with_status(exc.to_status())
        except Exception:
            # Internals stay in the log; the caller gets a plain INTERNAL.
            _measured(name, grpc.StatusCode.INTERNAL, started)
            log.exception("rpc crashed", extra={"rpc": name, "tenant": tenant})
            error = ApiError(grpc.StatusCode.INTERNAL, "internal", "internal error; it has been logged")
            await context.abort_with_status(error.to_status())
        # Envoy's access log is the request log; at DEBUG a gateway adds its own line a call.
        log.debug("rpc", extra={"rpc": name, "tenant": tenant, "ms": _measured(name, grpc.StatusCode.OK, started)})
        return response

    return wrapper


class FaceSearchService(pb_grpc.FaceSearchServicer):
    def __init__(
        self,
        searcher: Searcher,
        collections: Collections,
        persons: Persons,
        auth: Authenticator,
        matching: Matching,
        admin: Admin,
    ):
        self.searcher = searcher
        self.collections = collections
        self.persons = persons
        self.auth = auth
        self.matching = matching
        self.admin = admin

    @rpc
    async def SearchCrops(self, tenant: str, request: pb.SearchCropsRequest) -> pb.SearchResponse:
        return await self.searcher.search_crops(tenant, request)

    @rpc
    async def Search(self, tenant: str, request: pb.SearchRequest) -> pb.SearchResponse:
        return await self.searcher.search_images(tenant, request)

    @rpc
    async def Detect(self, tenant: str, request: pb.DetectRequest) -> pb.DetectResponse:
        return await self.matching.detect(tenant, request)

    @rpc
    async def Compare(self, tenant: str, request: pb.CompareRequest) -> pb.CompareResponse:
        return await self.matching.compare(request)

    @rpc
    async def Verify(self, tenant: str, request: pb.VerifyRequest) -> pb.VerifyResponse:
        return await self.matching.verify(tenant, request)

    @rpc
    async def CreateCollection(self, tenant: str, request: pb.CreateCollectionRequest) -> pb.CollectionResponse:
        return await self.collections.create(tenant, request)

    @rpc
    async def RetrieveCollection(self, tenant: str, request: pb.RetrieveCollectionRequest) -> pb.CollectionResponse:
        return await self.collections.retrieve(tenant, request)

    @rpc
    async def ListCollections(self, tenant: str, request: pb.ListCollectionsRequest) -> pb.CollectionListResponse:
        return await self.collections.list(tenant, request)

    @rpc
    async def UpdateCollection(self, tenant: str, request: pb.UpdateCollectionRequest) -> pb.CollectionResponse:
        return await self.collections.update(tenant, request)

    @rpc
    async def DeleteCollection(self, tenant: str, request: pb.DeleteCollectionRequest) -> pb.CollectionResponse:
        return await self.collections.delete(tenant, request)

    @rpc
    async def CreatePerson(self, tenant: str, request: pb.CreatePersonRequest) -> pb.PersonResponse:
        return await self.persons.create(tenant, request)

    @rpc
    async def RetrievePerson(self, tenant: str, request: pb.RetrievePersonRequest) -> pb.PersonResponse:
        return await self.persons.retrieve(tenant, request)

    @rpc
    async def ListPersons(self, tenant: str, request: pb.ListPersonsRequest) -> pb.PersonListResponse:
        return await self.persons.list(tenant, request)

    @rpc
    async def UpdatePerson(self, tenant: str, request: pb.UpdatePersonRequest) -> pb.PersonResponse:
        return await self.persons.update(tenant, request)

    @rpc
    async def DeletePerson(self, tenant: str, request: pb.DeletePersonRequest) -> pb.DeleteResponse:
        return await self.persons.delete(tenant, request)

    @admin_rpc
    async def EmbedFaces(self, tenant: str, request: pb.EmbedFacesRequest) -> pb.EmbedFacesResponse:
        return await self.admin.embed_faces(request)

    @admin_rpc
    async def StoreCalibration(self, tenant: str, request: pb.StoreCalibrationRequest) -> pb.CalibrationResponse:
        return await self.admin.store_calibration(request)

    @admin_rpc
    async def RetrieveCalibration(self, tenant: str, request: pb.RetrieveCalibrationRequest) -> pb.CalibrationResponse:
        return await self.admin.retrieve_calibration()
