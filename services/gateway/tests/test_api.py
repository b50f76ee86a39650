import asyncio

import grpc
import pytest

from gateway.api import FaceSearchService
from gateway.errors import REASON_KEY, invalid


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self, metadata=()):
        self.status = None
        self.metadata = metadata

    def invocation_metadata(self):
        return self.metadata

    async def abort_with_status(self, status):
        self.status = status
        raise Aborted


class Failing:
    def __init__(self, error: Exception):
        self.error = error

    async def search_crops(self, tenant, request):
        raise self.error


class Anyone:
    def tenant(self, metadata) -> str:
        return "t"


def call(error: Exception) -> grpc.Status:
    service = FaceSearchService(Failing(error), None, None, Anyone(), None, None)
    context = FakeContext()
    with pytest.raises(Aborted):
        asyncio.run(service.SearchCrops(object(), context))
    return context.status


def test_api_errors_keep_their_status_reason_and_message():
    status = call(invalid("invalid_base64", "images[0] is not valid base64"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "images[0] is not valid base64"
    assert (REASON_KEY, "invalid_base64") in status.trailing_metadata


def test_unexpected_errors_become_internal_without_internals():
    status = call(RuntimeError("secret path /var/lib/x"))
    assert status.code == grpc.StatusCode.INTERNAL
    assert "secret" not in status.details
    assert (REASON_KEY, "internal") in status.trailing_metadata
