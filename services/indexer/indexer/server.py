"""Indexer gRPC server (grpc.aio) with health and reflection.

The shards follow PostgreSQL (follower.py) on the event loop, between
searches; nothing else writes them. Health is SERVING once the held
collections are loaded. Concurrent searches of the same shards are answered
by one FAISS call (batching.py).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import faiss
import grpc
import numpy as np
import numpy.typing as npt
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from facesearch_common import database, gc_settings, health_checks, logs, reflection
from facesearch_common.errors import REASON_KEY
from facesearch_common.placement import collection_of

from . import memory, metrics
from .batching import SearchBatcher
from .config import Settings
from .device import choose as choose_device
from .follower import Behind, Follower, NotHeld
from .registry import DimensionMismatch, Query, Registry, ShardKey
from .shard import AnnPolicy, Look, Shard

# The gateway's search modes as the shards look.
LOOKS = {pb.MODE_UNSPECIFIED: Look.EXACT, pb.ACCURATE: Look.EXACT, pb.FAST: Look.FAST, pb.FAST_SECOND_LOOK: Look.SECOND}

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["Indexer"].full_name
STATUS: dict[type[Exception], grpc.StatusCode] = {
    NotHeld: grpc.StatusCode.FAILED_PRECONDITION,
    Behind: grpc.StatusCode.UNAVAILABLE,
    DimensionMismatch: grpc.StatusCode.INVALID_ARGUMENT,
    ValueError: grpc.StatusCode.INVALID_ARGUMENT,
}


def vectors(data: bytes, dim: int, what: str) -> npt.NDArray[np.float32]:
    values = np.frombuffer(data, dtype="<f4")
    if dim == 0 or values.size == 0 or values.size % dim:
        raise ValueError(f"{what}: expected a multiple of {dim} float32 values, got {values.size}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what}: values must be finite")
    return values.reshape(-1, dim)


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The status a domain error answers with; UNKNOWN for anything else."""
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)


class AnnBuilder:
    """Builds shards' approximate indexes in a background thread, one at a
    time, and swaps each in on the event loop when it is ready."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ann-build")

    def poke(self) -> None:
        for key, shard in list(self.registry.items()):
            if shard.wants_ann():
                self._start(key, shard)

    def _start(self, key: ShardKey, shard: Shard) -> None:
        snapshot = shard.ann_snapshot()
        started = time.perf_counter()
        future = asyncio.get_running_loop().run_in_executor(self._pool, shard.device.build_ann, snapshot)

        def done(f: asyncio.Future[faiss.Index]) -> None:
            if f.exception() is not None:
                shard.abandon_ann_build()
                log.error("ann build failed", extra={"shard": key, "error": repr(f.exception())})
                return
            shard.install_ann(f.result(), snapshot)
            memory.hand_back()
            metrics.FAST_BUILDS.observe(time.perf_counter() - started)
            log.info(
                "ann installed",
                extra={
                    "shard": key,
                    "faces": shard.faces,
                    "lists": snapshot.lists,
                    "seconds": round(time.perf_counter() - started, 2),
                },
            )

        future.add_done_callback(done)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


Service = TypeVar("Service", bound="IndexerService")
Request = TypeVar("Request")
Response = TypeVar("Response")
# What grpc.aio calls: the servicer's method with the call's context.
Handler = Callable[[Service, Request, grpc.aio.ServicerContext[Request, Response]], Coroutine[Any, Any, Response]]


# Two signatures because a Response | Awaitable[Response] parameter would infer
# an async method's Response as the coroutine itself.
@overload
def answers_errors(
    method: Callable[[Service, Request], Awaitable[Response]],
) -> Handler[Service, Request, Response]: ...
@overload
def answers_errors(method: Callable[[Service, Request], Response]) -> Handler[Service, Request, Response]: ...


def answers_errors(
    method: Callable[[Service, Request], Response | Awaitable[Response]],
) -> Handler[Service, Request, Response]:
    """Domain errors become gRPC statuses with their message and reason."""

    @functools.wraps(method)
    async def wrapper(
        self: Service, request: Request, context: grpc.aio.ServicerContext[Request, Response]
    ) -> Response:
        try:
            answer = method(self, request)
            if inspect.isawaitable(answer):
                answer = await answer
            return answer
        except tuple(STATUS) as exc:
            code = status_of(exc)
            reason = exc.reason if isinstance(exc, NotHeld | Behind) else "invalid_argument"
            await context.abort(code, str(exc), trailing_metadata=((REASON_KEY, reason),))

    return wrapper


class IndexerService(pb_grpc.IndexerServicer):
    def __init__(self, follower: Follower, catch_up_s: float) -> None:
        self.follower = follower
        self.catch_up_s = catch_up_s
        self.searches = SearchBatcher(follower)

    @answers_errors
    async def Search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        mode, started, code = pb.Mode.Name(request.mode), time.perf_counter(), grpc.StatusCode.OK
        try:
            return await self._search(request)
        except Exception as exc:
            code = status_of(exc)
            raise
        finally:
            metrics.SEARCHES.labels(mode, code.name).inc()
            metrics.SEARCH_LATENCY.labels(mode).observe(time.perf_counter() - started)

    async def _search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        queries = vectors(request.queries, request.dim, "queries")
        await self.follower.reach(request.min_seq, self.catch_up_s)
        look = LOOKS.get(request.mode, Look.EXACT)
        query = Query(request.tenant, tuple(request.shards), max(1, request.top_k), request.min_cosine, look)
        found = await self.searches.search(query, queries)
        return pb.SearchResponse(
            results=[
                pb.Hits(
                    hits=[
                        pb.Hit(
                            person_id=h.hit.person_id,
                            face_id=h.hit.face_id,
                            collection_id=collection_of(h.collection_id),
                            cosine=h.hit.score,
                            version=h.hit.version,
                        )
                        for h in hits
                    ]
                )
                for hits in found.hits
            ],
            faces=found.faces,
            approximate=found.approximate,
        )

    @answers_errors
    def ShardStats(self, request: pb.Ref) -> pb.ShardStatsResponse:
        shard = self.follower.registry.get((request.tenant, request.id))
        if shard is None:
            return pb.ShardStatsResponse()
        return pb.ShardStatsResponse(faces=shard.faces, persons=shard.persons, dim=shard.dim, ann=shard.ann is not None)


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def serving(self) -> None:
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace=grace_s)


async def start(follower: Follower, address: str, catch_up_s: float = 5.0) -> Running:
    """The indexer's gRPC server on `address`, started; NOT_SERVING until `serving()`."""
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    )
    # grpc_tools writes no .pyi for the _grpc module, so its functions are untyped.
    pb_grpc.add_IndexerServicer_to_server(IndexerService(follower, catch_up_s), server)  # type: ignore[no-untyped-call]
    health_servicer = await health_checks.not_serving_yet(SERVICE)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, (SERVICE, health.SERVICE_NAME))
    port = server.add_insecure_port(address)
    await server.start()
    return Running(server, port, health_servicer)


async def serve(settings: Settings) -> None:
    logs.setup("indexer", settings.log_level)
    if settings.threads:
        faiss.omp_set_num_threads(settings.threads)
    policy = AnnPolicy(min_faces=settings.ann_min_faces, nprobe=settings.nprobe)
    device = choose_device(settings.device)
    log.info("device", extra={"device": device.name})
    registry = Registry(policy, device)
    builder = AnnBuilder(registry)
    pool = await database.pool(settings.database_url)
    follower = Follower(pool, registry, settings.name, settings.indexers, settings.replicas, builder.poke)
    running = await start(follower, settings.address, settings.catch_up_s)
    metrics.serve(follower, settings.host, settings.metrics_port)
    log.info("listening", extra={"address": settings.address, "port": running.port, "holds_of": settings.indexers})
    following = asyncio.create_task(follower.follow(settings.database_url))
    await follower.loaded.wait()
    gc_settings.settle()  # the shards loaded
    await running.serving()
    log.info("serving", extra={"applied": follower.applied})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    following.cancel()
    await running.stop(grace_s=5)
    builder.close()
    await pool.close()
    log.info("stopped")


def main() -> None:
    uvloop.run(serve(Settings()))


if __name__ == "__main__":
    main()
