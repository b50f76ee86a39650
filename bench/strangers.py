"""Is this stranger in my gallery? 1:N scores through the running service.

The open-set protocol of bench/open_set.py through Envoy's REST API: the
held-out identities (half enrolled from their first photo, half strangers)
and distractors enrolled as persons, in three collections of about 100,
1,300 and every lfw-dev face (a person in each collection its place in the
gallery order reaches); every probe, as a 120x120 crop, searched in each
collection at min_score 0.5 (the API's floor: a top answer scored below
it comes back as no answer). In the same run, the same protocol in process
(bench/calibrate.py), with the 1:N score and with the pairwise score shipped
before, whose strangers the API cannot show. Ends with the plot of accepted
strangers and found enrolled persons against min_score, per gallery size.

    python -m bench.strangers
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench import calibrate, open_set, plots
from bench.common import console
from devkit import lfw
from devkit.client import CallFailed, Rest, parallel
from devkit.stack import Stack
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

WORKERS = 4


def enroll_gallery(rest: Rest, protocol: open_set.Protocol) -> tuple[dict[int, str], dict[str, str]]:
    """Collections by size, and the enrolled identities' person ids."""
    collections = {size: rest.collection(f"open-set-{size or 'all'}") for size in open_set.SIZES}

    def member_of(place: int) -> list[str]:
        return [c for size, c in collections.items() if size == 0 or place < protocol.size(size)]

    people = [(name, lfw.photos(name)[0]) for name in protocol.enrolled]
    people += [(f"{path.stem} (distractor)", path) for path in protocol.extras]

    def enroll(item: tuple[int, tuple[str, Path]]) -> tuple[str, str | None]:
        place, (name, photo) = item
        try:
            return name, rest.enroll(name, photo, member_of(place))["id"]
        except CallFailed:
            return name, None

    ids = dict(parallel(enroll, list(enumerate(people)), WORKERS))
    refused = [n for n, i in ids.items() if i is None]
    console.print(f"enrolled {len(ids) - len(refused)} persons ({len(refused)} refused: {refused[:5]})")
    return collections, {name: ids[name] for name in protocol.enrolled if ids[name]}


def served_outcomes(rest: Rest, collection: str, probes: list[open_set.Probe], ids: dict[str, str]):
    def one(probe: open_set.Probe) -> tuple[float, bool, int]:
        answer = rest.ok(
            "/search/crops",
            {
                "images": [lfw.b64(lfw.crop(probe.path))],
                "min_score": 0.5,
                "search_mode": "ACCURATE",
                "collection_id": collection,
                "max_results": 1,
            },
        )
        top = answer["data"][0] if answer["data"] else None
        right = top is not None and probe.identity is not None and top["id"] == ids.get(probe.identity)
        return (top["score"] if top else 0.0), right, answer["faces_searched"]

    rows = parallel(one, probes, WORKERS)
    return open_set.Outcomes(
        rows[0][2],
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([p.identity is None for p in probes]),
    )


def plot(by_size: dict[str, open_set.Outcomes], before: dict[str, open_set.Outcomes]) -> None:
    grid = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]

    def series(outcomes: dict[str, open_set.Outcomes], column: int, suffix: str):
        return {
            f"{label} faces{suffix}": (grid, [row[column] for row in open_set.acceptance(o, grid)])
            for label, o in outcomes.items()
        }

    path = plots.draw(
        "strangers",
        "search/crops on held-out lfw-dev identities, half the probes strangers",
        [
            plots.Panel(
                "min_score",
                "strangers accepted",
                {**series(by_size, 1, ""), **series(before, 1, ", pairwise score before")},
                levels={"5%": 0.05},
            ),
            plots.Panel("min_score", "enrolled persons found and accepted", series(by_size, 2, "")),
        ],
    )
    console.print(f"plot: {path}")


def main() -> None:
    protocol = open_set.protocol()
    probes = protocol.probes()
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), lfw.evaluation_model()).running() as stack:
        rest = Rest(stack.rest, stack.token("strangers"))
        collections, ids = enroll_gallery(rest, protocol)
        served = {f"{protocol.size(s):,}": served_outcomes(rest, collections[s], probes, ids) for s in open_set.SIZES}
    for label, outcomes in served.items():
        assert outcomes.faces == int(label.replace(",", "")), (label, outcomes.faces)
    console.print(open_set.acceptance_table("1:N score through REST (search/crops)", served))
    console.print(open_set.reliability_table("1:N score through REST: reliability of top answers", served))
    misses = open_set.meets_targets(served)
    console.print("targets: " + ("met" if not misses else "missed: " + "; ".join(misses)))

    faces = calibrate.embed_lfw_dev(SPEC)
    sizes = {f"{protocol.size(s):,}": s for s in open_set.SIZES}
    before = {
        label: calibrate.open_set_outcomes(faces, protocol, s, lambda c, n: calibrate.pairwise_before(c))
        for label, s in sizes.items()
    }
    in_process = {
        label: calibrate.open_set_outcomes(faces, protocol, s, SPEC.calibration.score) for label, s in sizes.items()
    }
    console.print(open_set.acceptance_table("the pairwise score before, same probes, in process", before))
    console.print(open_set.reliability_table("the pairwise score before: reliability of top answers", before))
    console.print(open_set.acceptance_table("1:N score, same probes, in process", in_process))
    plot(served, before)


if __name__ == "__main__":
    main()
