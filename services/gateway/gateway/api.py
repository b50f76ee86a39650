"""The public gRPC service: each RPC hands its request to a domain module and
turns ApiError into a proper gRPC status."""

from __future__ import annotations

import functools
import logging
import time

import grpc

from facesearch.v1 import facesearch_pb2 as pb
from facesearch.v1 import facesearch_pb2_grpc as pb_grpc

from .errors import ApiError
from .resources import Resources
from .search import Searcher

log = logging.getLogger(__name__)


def rpc(method):
    @functools.wraps(method)
    async def wrapper(self: "FaceSearchService", request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        tenant = self.tenant_of(context)
        try:
            response = await method(self, tenant, request)
        except ApiError as exc:
            log.info("rpc failed", extra={"rpc": method.__name__, "tenant": tenant, "code": exc.code.name,
                                          "reason": exc.reason, "ms": round((time.perf_counter() - started) * 1e3, 1)})
            await context.abort_with_status(exc.to_status())
        log.info("rpc", extra={"rpc": method.__name__, "tenant": tenant,
                               "ms": round((time.perf_counter() - started) * 1e3, 1)})
        return response

    return wrapper


class FaceSearchService(pb_grpc.FaceSearchServicer):
    def __init__(self, searcher: Searcher, resources: Resources, default_tenant: str):
        self.searcher = searcher
        self.resources = resources
        self.default_tenant = default_tenant

    def tenant_of(self, context: grpc.aio.ServicerContext) -> str:
        return self.default_tenant

    @rpc
    async def SearchCrops(self, tenant: str, request: pb.SearchCropsRequest) -> pb.SearchResponse:
        return await self.searcher.search_crops(tenant, request)

    @rpc
    async def CreateCollection(self, tenant: str, request: pb.CreateCollectionRequest) -> pb.CollectionResponse:
        return await self.resources.create_collection(tenant, request)

    @rpc
    async def CreatePerson(self, tenant: str, request: pb.CreatePersonRequest) -> pb.PersonResponse:
        return await self.resources.create_person(tenant, request)
