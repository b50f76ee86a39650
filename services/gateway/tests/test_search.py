"""search.py: `both` (the embedding and the scope read run together; the
embedding's error wins and nothing is left running), and Searcher with
stand-ins for what it calls: the score filter, persons deleted between the
index and the cache, unknown collections, when the scope is read (scopes.py
shares it), the envelope."""

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest
from google.protobuf import struct_pb2

from facesearch.indexer.v1 import indexer_pb2
from facesearch.v1 import facesearch_pb2 as pb
from facesearch_common.database import UNREACHABLE
from facesearch_common.specs import MOBILEFACENET_CASIA
from gateway.catalog import Scope
from gateway.errors import ApiError
from gateway.indexer_client import Found, ShardSearch
from gateway.records import Person
from gateway.search import Searcher, both


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


# Searcher, with stand-ins for what it calls.


CALIBRATION = MOBILEFACENET_CASIA.calibration


@dataclass
class StandInCatalog:
    collections: dict[str, int] = field(default_factory=lambda: {"c1": 1})
    down: bool = False
    reads: int = 0

    async def scope(self, tenant, collections):
        self.reads += 1
        if self.down:
            raise UNREACHABLE[0]("the database did not answer")
        wanted = collections or list(self.collections)
        return Scope(41, {c: s for c, s in self.collections.items() if c in wanted})


@dataclass
class StandInShards:
    hits: list
    asked: list = field(default_factory=list)

    async def search(self, search: ShardSearch):
        self.asked.append(search)
        return Found(self.hits, 1000)


@dataclass
class StandInCache:
    persons: dict

    async def read(self, tenant, versions):
        return {i: self.persons[i] for i in versions if i in self.persons}


@dataclass
class StandInScoring:
    calibration = CALIBRATION


def hit(person: str, cosine: float) -> indexer_pb2.Hit:
    return indexer_pb2.Hit(person_id=person, face_id=f"{person}-face", collection_id="c1", cosine=cosine, version=3)


def searcher(catalog, shards, cache) -> Searcher:
    return Searcher(None, catalog, shards, cache, None, StandInScoring())  # type: ignore[arg-type]


def find(searcher: Searcher, scope: Scope, min_score: float):
    query = np.ones(128, np.float32) / np.sqrt(128)
    return asyncio.run(searcher.find("t", scope, query, 10, min_score, indexer_pb2.ACCURATE))


def test_only_persons_scoring_min_score_among_the_faces_searched_are_answered():
    strong, weak = 0.95, CALIBRATION.cosine(0.5)
    shards = StandInShards([hit("a", strong), hit("b", weak)])
    cache = StandInCache({"a": Person("a", "Ada"), "b": Person("b", "Bo")})
    data, searched = find(searcher(StandInCatalog(), shards, cache), Scope(41, {"c1": 1}), 0.9)
    assert [p.name for p in data] == ["Ada"] and searched == 1000
    assert data[0].score == round(CALIBRATION.score(strong, 1000), 6) >= 0.9
    # The indexer filters on the pairwise bound, below the search's own.
    (asked,) = shards.asked
    assert (asked.tenant, asked.collections, asked.top_k, asked.min_seq) == ("t", {"c1": 1}, 10, 41)
    assert asked.min_cosine == CALIBRATION.cosine(0.9) <= strong


def test_a_person_deleted_after_the_index_answered_is_skipped():
    strong = 0.95
    shards = StandInShards([hit("gone", strong + 0.01), hit("a", strong)])
    data, _ = find(searcher(StandInCatalog(), shards, StandInCache({"a": Person("a", "Ada")})), Scope(41, {}), 0.5)
    assert [p.id for p in data] == ["a"]


def test_an_unknown_collection_is_refused_by_name():
    search = searcher(StandInCatalog({"c1": 1, "c2": 2}), StandInShards([]), StandInCache({}))
    assert asyncio.run(search.scope("t", ["c2"], 0)).collections == ["c2"]
    with pytest.raises(ApiError) as refused:
        asyncio.run(search.scope("t", ["c2", "c3"], 0))
    assert refused.value.reason == "unknown_collection" and "c3" in refused.value.message


def test_alone_a_search_reads_while_embedding_and_behind_others_shares_a_read_after():
    catalog = StandInCatalog()
    search = searcher(catalog, StandInShards([]), StandInCache({}))

    async def main() -> list[int]:
        model = asyncio.Event()
        reads_when_embedded = []

        async def embed() -> str:
            await model.wait()
            reads_when_embedded.append(catalog.reads)
            return "faces"

        first = asyncio.ensure_future(search.embedded_in_scope("t", ["c1"], embed))
        for _ in range(5):
            await asyncio.sleep(0)
        behind = [asyncio.ensure_future(search.embedded_in_scope("t", ["c1"], embed)) for _ in range(3)]
        await asyncio.sleep(0.01)
        model.set()
        answers = await asyncio.gather(first, *behind)
        assert all(faces == "faces" and scope.head == 41 for faces, scope in answers)
        return reads_when_embedded

    # The first read while embedding; the three behind it, asked after it
    # was sent, share one read once embedded.
    assert asyncio.run(main()) == [1, 1, 1, 1] and catalog.reads == 2


def test_search_crops_embeds_and_reads_the_scope_together_then_answers_the_envelope():
    @dataclass
    class Reader:
        async def pixels(self, texts, field, max_side=None):
            return [np.zeros((40, 40, 3), np.uint8) for _ in texts]

    @dataclass
    class Pipeline:
        async def embed_crops(self, crops, field):
            from gateway.pipeline import EmbeddedFace

            vector = np.zeros(128, np.float32)
            vector[0] = 1
            return [EmbeddedFace(c, 0.99, vector) for c in crops]

    strong = 0.95
    search = Searcher(
        Pipeline(),  # type: ignore[arg-type]
        StandInCatalog(),  # type: ignore[arg-type]
        StandInShards([hit("a", strong)]),  # type: ignore[arg-type]
        StandInCache({"a": Person("a", "Ada")}),  # type: ignore[arg-type]
        Reader(),  # type: ignore[arg-type]
        StandInScoring(),  # type: ignore[arg-type]
    )
    request = pb.SearchCropsRequest(
        images=["x", "y"], min_score=struct_pb2.Value(string_value="0.9"), search_mode="ACCURATE"
    )
    answer = asyncio.run(search.search_crops("t", request))
    assert [p.name for p in answer.data] == ["Ada"] and answer.faces_searched == 1000
    assert answer.signature.message and len(answer.id) == 24
