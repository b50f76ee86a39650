"""API errors: a gRPC status, a stable machine-readable reason, a message.

Over REST, Envoy turns them into `{"error": reason, "message": ..., "code": ...}`
with the standard gRPC-to-HTTP status mapping. gRPC clients get the same
reason in the `facesearch-error` trailer and in a google.rpc.ErrorInfo detail.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from facesearch_common.errors import REASON_KEY

DOMAIN = "facesearch.v1"


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def to_status(self) -> grpc.Status:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN))
        status = rpc_status.to_status(
            status_pb2.Status(code=getattr(code_pb2, self.code.name), message=self.message, details=[info])
        )
        # grpc_status answers a namedtuple: add the reason trailer to it.
        return cast(
            grpc.Status, status._replace(trailing_metadata=(*status.trailing_metadata, (REASON_KEY, self.reason)))
        )


def invalid(reason: str, message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, reason, message)


def not_found(reason: str, message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, reason, message)


def unavailable(reason: str, message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAVAILABLE, reason, message)


def unknown_collection(id: str) -> ApiError:
    return not_found("unknown_collection", f"collection {id!r} does not exist")


def unknown_person(id: str, detail: str = "does not exist") -> ApiError:
    return not_found("unknown_person", f"person {id!r} {detail}")
