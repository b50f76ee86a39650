"""The gateway's indexer client against a real gRPC server on loopback: an
indexer that is down fails a search at once, unless the search waits for it
(a shard's last holder, restarting), and then it is answered as soon as the
indexer listens again."""

from __future__ import annotations

import asyncio
import time

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
