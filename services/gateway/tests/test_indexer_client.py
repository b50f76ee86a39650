"""The gateway's indexer client against a real gRPC server on loopback: an
indexer that is down fails a search at once, unless the search waits for it
(a shard's last holder, restarting), and then it is answered as soon as the
indexer listens again; searches that arrive together share a call, each
answered its own query's hits, and fail or give up apart."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import grpc
import numpy as np
import pytest

from facesearch.indexer.v1 import indexer_pb2 as pb
from facesearch.indexer.v1 import indexer_pb2_grpc as pb_grpc
from gateway.errors import ApiError
from gateway.indexer_client import IndexerClient, ShardSearch


class Answering(pb_grpc.IndexerServicer):
    async def Search(self, request, context):
        return pb.SearchResponse(results=[pb.Hits(hits=[pb.Hit(person_id="p", cosine=0.9)])], faces=1)


async def serve(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    pb_grpc.add_IndexerServicer_to_server(Answering(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    server.port = bound  # type: ignore[attr-defined]
    return server


def test_the_last_holder_is_waited_for_while_it_restarts():
    async def scenario() -> float:
        first = await serve(0)
        port = first.port  # type: ignore[attr-defined]
        await first.stop(None)  # the indexer is down
        client = IndexerClient(f"127.0.0.1:{port}", timeout_s=3.0)
        search = ShardSearch("t", {"c": 1}, np.ones(4, np.float32), 5, -1.0, pb.ACCURATE, 0)
        with pytest.raises(ApiError) as refused:
            await client.search(search, ["c"])
        assert refused.value.reason == "indexer_unavailable"

        async def restart() -> grpc.aio.Server:
            await asyncio.sleep(0.3)
            return await serve(port)

        restarting = asyncio.create_task(restart())
        started = time.monotonic()
        found = await client.search(search, ["c"], wait=True)
        waited = time.monotonic() - started
        assert [h.person_id for h in found.hits] == ["p"]
        await (await restarting).stop(None)
        await client.close()
        return waited

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 3.0  # it waited for the restart, within the deadline


class Recording(pb_grpc.IndexerServicer):
    """Answers each query with one hit named by the query's first value, and
    keeps the requests; fails every call while `failing`."""

    def __init__(self) -> None:
        self.requests: list[pb.SearchRequest] = []
        self.failing = False

    async def Search(self, request, context):
        self.requests.append(request)
        if self.failing:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such shard")
        queries = np.frombuffer(request.queries, "<f4").reshape(-1, request.dim)
        return pb.SearchResponse(
            results=[pb.Hits(hits=[pb.Hit(person_id=f"q{int(q[0])}", cosine=0.9)]) for q in queries], faces=7
        )


def query(value: float, dim: int = 4) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    vector[0] = value
    return vector


def against_recording(scenario):
    """Runs `scenario(client, servicer)` against a Recording indexer on loopback."""

    async def main():
        servicer = Recording()
        server = grpc.aio.server()
        pb_grpc.add_IndexerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        client = IndexerClient(f"127.0.0.1:{port}", timeout_s=3.0)
        try:
            return await scenario(client, servicer)
        finally:
            await client.close()
            await server.stop(None)

    return asyncio.run(main())


def test_searches_that_arrive_together_share_one_call_each_answered_its_own():
    async def scenario(client, servicer):
        searches = [
            ShardSearch("t", {"c": 1}, query(i), 5, 0.3, pb.ACCURATE, seq) for i, seq in ((1, 40), (2, 42), (3, 41))
        ]
        found = await asyncio.gather(*(client.search(s, ["c"]) for s in searches))
        assert [[h.person_id for h in f.hits] for f in found] == [["q1"], ["q2"], ["q3"]]
        assert all(f.faces == 7 for f in found)
        (request,) = servicer.requests
        assert request.min_seq == 42  # the latest any of them needs
        assert (request.tenant, list(request.shards), request.top_k, request.dim) == ("t", ["c"], 5, 4)

    against_recording(scenario)


def test_searches_that_differ_or_come_apart_are_separate_calls():
    async def scenario(client, servicer):
        base = ShardSearch("t", {"c": 1}, query(1), 5, 0.3, pb.ACCURATE, 1)
        await asyncio.gather(
            client.search(base, ["c"]),
            client.search(replace(base, top_k=6), ["c"]),
            client.search(base, ["c", "d"]),
            client.search(replace(base, tenant="u"), ["c"]),
            client.search(replace(base, mode=pb.FAST), ["c"]),
            client.search(replace(base, min_cosine=0.4), ["c"]),
        )
        assert len(servicer.requests) == 6
        await client.search(base, ["c"])
        await client.search(base, ["c"])
        assert len(servicer.requests) == 8  # one after the other: nothing to share

    against_recording(scenario)


def test_a_failed_call_fails_each_of_its_searches_with_the_indexers_reason():
    async def scenario(client, servicer):
        servicer.failing = True
        searches = [ShardSearch("t", {"c": 1}, query(i), 5, 0.3, pb.ACCURATE, 1) for i in range(2)]
        answers = await asyncio.gather(*(client.search(s, ["c"]) for s in searches), return_exceptions=True)
        assert len(servicer.requests) == 1
        assert all(isinstance(a, ApiError) and a.code == grpc.StatusCode.NOT_FOUND for a in answers), answers

    against_recording(scenario)


def test_a_search_that_gives_up_leaves_the_call_to_the_others():
    async def scenario(client, servicer):
        searches = [ShardSearch("t", {"c": 1}, query(i), 5, 0.3, pb.ACCURATE, 1) for i in (1, 2)]
        gone, staying = (asyncio.ensure_future(client.search(s, ["c"])) for s in searches)
        await asyncio.sleep(0)
        gone.cancel()
        found = await staying
        assert [h.person_id for h in found.hits] == ["q2"] and gone.cancelled()
        assert len(servicer.requests) == 1 and len(np.frombuffer(servicer.requests[0].queries, "<f4")) == 8

    against_recording(scenario)
