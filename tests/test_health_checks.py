"""The services' gRPC health servicers (facesearch_common.health_checks)
answer NOT_SERVING from the start, where grpcio-health-checking's own
answers SERVING for the whole server until told otherwise."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

SERVICE = "facesearch.v1.FaceSearch"


async def status(servicer: health.aio.HealthServicer, name: str) -> int:
    # A known service's Check never touches its context.
    reply = await servicer.Check(health_pb2.HealthCheckRequest(service=name), None)  # type: ignore[arg-type]
    return int(reply.status)


def test_a_service_is_not_serving_until_it_says_so() -> None:
    from facesearch_common import health_checks

    async def main() -> None:
        assert await status(health.aio.HealthServicer(), "") == health_pb2.HealthCheckResponse.SERVING
        servicer = await health_checks.not_serving_yet(SERVICE)
        for name in ("", SERVICE):
            assert await status(servicer, name) == health_pb2.HealthCheckResponse.NOT_SERVING
        await servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        assert await status(servicer, SERVICE) == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(main())
