"""gRPC server reflection for the services' grpc.aio servers.

grpcio-reflection answers from protobuf's descriptor pool, and the pool that
protobuf's upb runtime gives finds no method symbols: `grpcurl describe
facesearch.v1.FaceSearch.SearchCrops` (a FileContainingSymbol request for
`package.Service.Method`) was answered "Symbol not found". The pool below
answers a method with its service's file, as protoc's own pool does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pool
from grpc_reflection.v1alpha import reflection

SERVICE_NAME: str = reflection.SERVICE_NAME


class MethodAwarePool:
    """A descriptor pool that also finds the file of a method symbol."""

    def __init__(self, pool: Any):  # typeshed leaves DescriptorPool's methods untyped
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str) -> descriptor.FileDescriptor:
        try:
            found: descriptor.FileDescriptor = self._pool.FindFileContainingSymbol(symbol)
            return found
        except KeyError:
            service, _, method = symbol.rpartition(".")
            owner = self._pool.FindServiceByName(service) if service else None  # KeyError when not a service
            if owner is None or method not in owner.methods_by_name:
                raise
            file: descriptor.FileDescriptor = owner.file
            return file


def enable(server: grpc.aio.Server, services: Iterable[str]) -> None:
    """Reflection for `services` (and for reflection itself) on `server`."""
    reflection.enable_server_reflection(
        (*services, SERVICE_NAME),
        server,
        pool=MethodAwarePool(descriptor_pool.Default()),  # type: ignore[no-untyped-call]
    )
