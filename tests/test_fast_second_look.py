"""FAST's second look through the whole stack (gateway/shards.py): once a
collection has its approximate index, a FAST search whose best face is a
weak match (a stranger's) asks the indexer again, deeper, and one that finds
its person well does not; both answer as ACCURATE does."""

from __future__ import annotations

import time

import pytest

from devkit import lfw
from devkit.client import Rest, scrape, scrape_all
from devkit.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]

ENROLLED = 160  # over INDEXER_ANN_MIN_FACES: the collection gets a FAST index
LOOKS = ("facesearch_gateway_fast_second_looks_total", ())
SECOND_LOOK_CALLS = ("facesearch_indexer_searches_total", (("code", "OK"), ("mode", "FAST_SECOND_LOOK")))


@pytest.fixture(scope="module")
def approximate(tmp_path_factory):
    env = {**lfw.evaluation_model(), "INDEXER_ANN_MIN_FACES": "100"}
    with Stack(tmp_path_factory.mktemp("second-look"), env).running() as stack:
        rest = Rest(stack.rest, stack.token())
        collection = rest.collection("second look")
        photos = lfw.distractors()[:ENROLLED]
        for i, photo in enumerate(photos):
            rest.person(f"d{i}", [lfw.b64(lfw.crop(photo))], [collection])
        deadline = time.monotonic() + 120
        while not scrape(stack.indexers.metrics_ports[0]).get(
            ("facesearch_indexer_fast_index_ready", (("shard", collection), ("tenant", "default"))), 0
        ):
            assert time.monotonic() < deadline, "the FAST index was not built"
            time.sleep(0.5)
        yield stack, rest, collection, photos


def looked(stack, rest: Rest, probe, collection: str) -> tuple[float, float, list[str], list[str]]:
    """Second looks the gateway and the indexer counted for one FAST search,
    and the persons it and an ACCURATE search answered."""
    before = scrape_all(stack.gateways.metrics_ports), scrape(stack.indexers.metrics_ports[0])
    fast = rest.search([lfw.b64(lfw.crop(probe))], mode="FAST", collection_id=collection)
    after = scrape_all(stack.gateways.metrics_ports), scrape(stack.indexers.metrics_ports[0])
    accurate = rest.search([lfw.b64(lfw.crop(probe))], collection_id=collection)
    assert fast.status_code == accurate.status_code == 200, (fast.text, accurate.text)
    return (
        after[0].get(LOOKS, 0) - before[0].get(LOOKS, 0),
        after[1].get(SECOND_LOOK_CALLS, 0) - before[1].get(SECOND_LOOK_CALLS, 0),
        [p["name"] for p in fast.json()["data"]],
        [p["name"] for p in accurate.json()["data"]],
    )


def test_a_strangers_fast_search_looks_again(approximate):
    stack, rest, collection, _ = approximate
    stranger = lfw.photos(lfw.identities()[0])[0]  # an lfw-dev identity, none of them enrolled
    gateway_looks, indexer_calls, fast, accurate = looked(stack, rest, stranger, collection)
    assert (gateway_looks, indexer_calls) == (1, 1)
    assert fast == accurate == []


def test_a_fast_search_that_finds_its_person_well_looks_once(approximate):
    stack, rest, collection, photos = approximate
    gateway_looks, indexer_calls, fast, accurate = looked(stack, rest, photos[7], collection)
    assert (gateway_looks, indexer_calls) == (0, 0)
    assert fast == accurate == ["d7"]
