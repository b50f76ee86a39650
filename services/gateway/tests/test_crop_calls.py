"""crop_calls.py with a stand-in for the crop embedder: a lone request goes
out at once; requests that find every call busy go together in the next
one, each answered its own rows; a call holds at most an even share of
the crops queued or in flight, and the model's max batch; a failed call
fails each of its requests with its own error and the queue moves on; a
request that gives up costs the others nothing."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from gateway.crop_calls import Crops, Embedded, SharedCalls
from gateway.errors import ApiError, unavailable


def crops(*marks: int) -> Crops:
    """One crop a mark; the stand-in embeds a crop as its mark."""
    return Crops([np.full((2, 2, 3), mark, np.uint8) for mark in marks])


class StandIn:
    """The crop embedder: each call is recorded (its marks) and waits for
    `release` while `hold` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.hold = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = fail
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, batch: Crops) -> Embedded:
        marks = np.array([pixels[0, 0, 0] for pixels in batch.pixels], np.float32)
        self.calls.append(marks.astype(int).tolist())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hold.is_set():
                await self.release.wait()
            if self.fail:
                raise unavailable("embedder_unavailable", "the embedder did not answer")
            return {"emb": marks[:, None] * np.ones((1, 3), np.float32), "score": marks[:, None]}
        finally:
            self.in_flight -= 1


def marks(out: Embedded) -> list[int]:
    assert out["emb"].shape == (len(out["score"]), 3)
    return out["score"][:, 0].astype(int).tolist()


async def answered(*tasks: asyncio.Task[Embedded], **kw: bool) -> list:
    """Their answers, or a failed test where a request was left waiting."""
    return await asyncio.wait_for(asyncio.gather(*tasks, **kw), 5)


async def started(calls: SharedCalls, *requests: Crops) -> list[asyncio.Task[Embedded]]:
    tasks = []
    for request in requests:
        tasks.append(asyncio.create_task(calls.embed(request)))
        await asyncio.sleep(0)  # each reaches the queue in turn
    return tasks


def test_a_lone_request_goes_out_at_once_alone():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=2)
        calls.max_rows = 64
        assert marks(await asyncio.wait_for(calls.embed(crops(7, 8)), 1)) == [7, 8]
        assert embedder.calls == [[7, 8]]

    asyncio.run(main())


def test_requests_waiting_on_a_busy_call_share_the_next_each_with_its_own_rows():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=1)
        calls.max_rows = 64
        embedder.hold.set()
        first = await started(calls, crops(1))
        rest = await started(calls, crops(2, 3, 4), crops(5), crops(6, 7))
        assert embedder.calls == [[1]]  # the others wait
        embedder.hold.clear()
        embedder.release.set()
        answers = [marks(a) for a in await answered(*first, *rest)]
        assert answers == [[1], [2, 3, 4], [5], [6, 7]]
        assert embedder.calls == [[1], [2, 3, 4, 5, 6, 7]]

    asyncio.run(main())


def test_no_more_calls_in_flight_than_allowed_and_none_idle_while_requests_wait():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=2)
        calls.max_rows = 64
        embedder.hold.set()
        tasks = await started(calls, *(crops(i) for i in range(1, 6)))
        assert embedder.calls == [[1], [2]] and embedder.in_flight == 2
        embedder.release.set()
        assert [marks(a) for a in await answered(*tasks)] == [[1], [2], [3], [4], [5]]
        # [1] back: [2] flies with one crop and three wait, so the next call
        # takes half of the four; [2] back: the last goes.
        assert embedder.calls == [[1], [2], [3, 4], [5]] and embedder.most_in_flight == 2

    asyncio.run(main())


def test_a_call_takes_an_even_share_of_the_crops_queued_or_in_flight():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=2)
        calls.max_rows = 64
        embedder.hold.set()
        first = await started(calls, crops(1))  # alone: both calls were free
        second = await started(calls, crops(2, 3))
        await asyncio.sleep(0)  # its call starts
        assert embedder.calls == [[1], [2, 3]]
        queued = await started(calls, crops(4), crops(5, 6), crops(7), crops(8, 9, 10), crops(11))
        embedder.hold.clear()
        embedder.release.set()
        answers = [marks(a) for a in await answered(*first, *second, *queued)]
        assert answers == [[1], [2, 3], [4], [5, 6], [7], [8, 9, 10], [11]]
        # [1] back: 8 crops queued and 2 flying, so a call takes up to 5
        # (whole requests: 4, 5 6, 7 make 4; 8 9 10 would pass 5); [2, 3] back:
        # 4 queued and 4 flying, so up to 4, all of them.
        assert embedder.calls == [[1], [2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]

    asyncio.run(main())


def test_a_call_holds_at_most_the_models_max_batch_and_a_larger_request_goes_alone():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=1)
        calls.max_rows = 4
        embedder.hold.set()
        tasks = await started(calls, crops(1), crops(2, 3), crops(4, 5), crops(6, 7, 8, 9, 10, 11), crops(12))
        embedder.hold.clear()
        embedder.release.set()
        answers = [marks(a) for a in await answered(*tasks)]
        assert answers == [[1], [2, 3], [4, 5], [6, 7, 8, 9, 10, 11], [12]]
        assert embedder.calls == [[1], [2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12]]

    asyncio.run(main())


def test_a_failed_call_fails_each_request_with_its_own_error_and_the_queue_moves_on():
    async def main() -> None:
        embedder = StandIn(fail=True)
        calls = SharedCalls(embedder, max_calls=1)
        calls.max_rows = 64
        embedder.hold.set()
        tasks = await started(calls, crops(1), crops(2), crops(3))
        embedder.hold.clear()
        embedder.release.set()
        errors = await answered(*tasks, return_exceptions=True)
        assert all(isinstance(e, ApiError) and e.code == grpc.StatusCode.UNAVAILABLE for e in errors)
        assert errors[1] is not errors[2]  # each raised in its own task
        embedder.fail = False
        assert marks(await asyncio.wait_for(calls.embed(crops(4)), 1)) == [4]  # nothing left counted in flight
        assert embedder.calls == [[1], [2, 3], [4]]

    asyncio.run(main())


def test_a_request_that_gives_up_is_not_sent_and_costs_the_others_nothing():
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=1)
        calls.max_rows = 64
        embedder.hold.set()
        busy = await started(calls, crops(1))
        queued = await started(calls, crops(2), crops(3), crops(4))
        queued[1].cancel()  # gives up while queued
        busy[0].cancel()  # gives up while its call is in flight
        embedder.hold.clear()
        embedder.release.set()
        assert [marks(a) for a in await answered(queued[0], queued[2])] == [[2], [4]]
        assert embedder.calls == [[1], [2, 4]]

    asyncio.run(main())


@pytest.mark.parametrize(("max_calls", "max_rows"), [(0, 64), (2, 0)])
def test_without_a_limit_or_before_the_max_batch_is_known_each_request_is_its_own_call(max_calls, max_rows):
    async def main() -> None:
        embedder = StandIn()
        calls = SharedCalls(embedder, max_calls=max_calls)
        calls.max_rows = max_rows
        embedder.hold.set()
        tasks = await started(calls, crops(1), crops(2), crops(3))
        assert embedder.in_flight == 3
        embedder.release.set()
        assert [marks(a) for a in await answered(*tasks)] == [[1], [2], [3]]
        assert embedder.calls == [[1], [2], [3]]

    asyncio.run(main())
