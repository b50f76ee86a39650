"""gRPC health for the services' grpc.aio servers.

grpcio-health-checking's servicer starts out SERVING for the server as a
whole (""). A probe between a server's start and its own first check of
its backends was then answered SERVING: a fresh-clone CI run saw Envoy
count a gateway healthy 0.14 s before that gateway found the embedder
still starting, and send it a call that failed (`embedder_unavailable`).
Each service's servicer starts NOT_SERVING instead, for the server and
its service, until the service says otherwise.
"""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2


async def not_serving_yet(service: str) -> health.aio.HealthServicer:
    """A health servicer answering NOT_SERVING for "" and `service`."""
    servicer = health.aio.HealthServicer()
    for name in ("", service):
        await servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return servicer
