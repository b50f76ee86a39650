"""scopes.py: a search uses only a scope read sent after it was asked, and
the searches asked before a read was sent share it; a failed read is not
shared, a cancelled search does not cancel the others' read, and while the
database is unreachable the newest scope answers for its own key only."""

import asyncio
from dataclasses import dataclass

import pytest

from facesearch_common.database import UNREACHABLE
from gateway.catalog import Scope
from gateway.scopes import ScopeReads


@dataclass
class Log:
    """The change log's end and its reads; `gate`, when set, holds the reads
    (only read number `held`, when given) until it opens."""

    head: int = 41
    reads: int = 0
    down: bool = False
    gate: asyncio.Event | None = None
    held: int | None = None

    async def scope(self, tenant, collections):
        self.reads += 1
        head = self.head  # PostgreSQL's snapshot: taken as the read arrives
        if self.gate is not None and self.held in (None, self.reads):
            await self.gate.wait()
        if self.down:
            raise UNREACHABLE[0]("the database did not answer")
        return Scope(head, dict.fromkeys(collections, 1))


async def sent(log: Log, reads: int) -> None:
    """Until `reads` reads have reached the database (a few loop turns at most)."""
    for _ in range(100):
        if log.reads >= reads:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{log.reads} reads sent, {reads} expected")


def test_a_read_sent_before_a_search_was_asked_is_never_its_answer():
    async def main() -> None:
        log = Log(gate=asyncio.Event())
        scopes = ScopeReads(log.scope)
        first = asyncio.ensure_future(scopes.read("t", ["c"], scopes.ticket()))
        await sent(log, 1)  # the first read is sent and waits
        log.head = 42  # a write acknowledged meanwhile...
        later = asyncio.ensure_future(scopes.read("t", ["c"], scopes.ticket()))  # ...then a search asked
        await sent(log, 2)
        log.gate.set()
        assert (await first).head == 41 and (await later).head == 42
        assert log.reads == 2

    asyncio.run(main())


def test_searches_asked_before_a_read_was_sent_share_it():
    async def main() -> None:
        log = Log(gate=asyncio.Event())
        scopes = ScopeReads(log.scope)
        tickets = [scopes.ticket() for _ in range(5)]  # five searches asked, then embedding
        reads = [asyncio.ensure_future(scopes.read("t", ["c"], t)) for t in tickets]
        await sent(log, 1)
        log.gate.set()
        assert {(await r).head for r in reads} == {41}
        assert log.reads == 1
        # Answered, the read still serves a search asked before it was sent...
        assert (await scopes.read("t", ["c"], tickets[0])).head == 41 and log.reads == 1
        # ...not one asked after, nor another scope.
        await scopes.read("t", ["c"], scopes.ticket())
        await scopes.read("t", ["other"], tickets[0])
        await scopes.read("u", ["c"], tickets[0])
        assert log.reads == 4

    asyncio.run(main())


def test_a_failed_read_is_not_shared_with_the_next_search():
    async def main() -> None:
        log = Log(down=True)
        scopes = ScopeReads(log.scope)
        ticket = scopes.ticket()
        with pytest.raises(UNREACHABLE):
            await scopes.read("t", ["c"], ticket)
        log.down = False
        assert (await scopes.read("t", ["c"], ticket)).head == 41
        assert log.reads == 2

    asyncio.run(main())


def test_a_search_that_gives_up_leaves_the_shared_read_to_the_others():
    async def main() -> None:
        log = Log(gate=asyncio.Event())
        scopes = ScopeReads(log.scope)
        ticket = scopes.ticket()
        gone, staying = (asyncio.ensure_future(scopes.read("t", ["c"], ticket)) for _ in range(2))
        await sent(log, 1)
        gone.cancel()
        await asyncio.sleep(0)
        log.gate.set()
        assert (await staying).head == 41 and gone.cancelled() and log.reads == 1

    asyncio.run(main())


def test_while_the_database_is_unreachable_the_newest_scope_of_the_same_key_answers():
    async def main() -> None:
        log = Log()
        scopes = ScopeReads(log.scope)
        await scopes.read("t", ["c"], scopes.ticket())
        log.head = 43
        await scopes.read("t", ["c"], scopes.ticket())
        log.down = True
        assert (await scopes.read("t", ["c"], scopes.ticket())).head == 43
        with pytest.raises(UNREACHABLE):
            await scopes.read("t", ["other"], scopes.ticket())  # never read: nothing to fall back on

    asyncio.run(main())


def test_an_older_read_answering_last_does_not_replace_the_newer_fallback():
    async def main() -> None:
        log = Log(gate=asyncio.Event(), held=1)
        scopes = ScopeReads(log.scope)
        older = asyncio.ensure_future(scopes.read("t", ["c"], scopes.ticket()))
        await sent(log, 1)
        log.head = 42
        assert (await scopes.read("t", ["c"], scopes.ticket())).head == 42
        log.gate.set()
        assert (await older).head == 41
        log.down = True
        assert (await scopes.read("t", ["c"], scopes.ticket())).head == 42

    asyncio.run(main())
