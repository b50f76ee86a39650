"""search.both: the embedding and the scope read run together; the
embedding's error wins and nothing is left running."""

import asyncio

import pytest

from gateway.search import both


def test_both_run_at_once_and_answer_in_order():
    async def after(seconds: float, value: str) -> str:
        await asyncio.sleep(seconds)
        return value

    async def main() -> tuple[tuple[str, str], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        return await both(after(0.2, "a"), after(0.2, "b")), loop.time() - start

    answer, took = asyncio.run(main())
    assert answer == ("a", "b") and took < 0.35


def test_the_first_error_wins_and_the_other_is_cancelled():
    cancelled = []

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad crop")

    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    async def main() -> None:
        with pytest.raises(ValueError, match="bad crop"):
            await both(fails(), slow())
        await asyncio.sleep(0)  # the cancellation is delivered

    asyncio.run(main())
    assert cancelled == [True]
