"""Recognition accuracy through the running service's REST API (Envoy), on
lfw-dev:

- 1:N: the 300 identities enrolled from their first photo, with the 1,000
  distractors in the same collection; every other photo of each identity as
  a probe, both as a 120x120 crop (search/crops) and as the whole photo
  (search). Rank-1 and rank-5.
- 1:1: /compare on 600 pairs of whole photos (300 genuine, 300 impostor, as
  LFW's protocol), accuracy at min_score 0.5, 0.7, 0.8, 0.9, with the
  calibrated score.

    python -m bench.accuracy     (or `make bench`)
"""

from __future__ import annotations

import base64
import random
import tempfile
from pathlib import Path

import numpy as np
from rich.table import Table

from bench.common import console
from devkit import lfw
from devkit.client import CallFailed, Rest, parallel
from devkit.stack import Stack

WORKERS = 4
THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


def whole(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def rank(data: list[dict], wanted: str | None) -> int | None:
    ids = [p["id"] for p in data]
    return ids.index(wanted) + 1 if wanted in ids else None


def compare_pairs(seed: int = 7) -> list[tuple[Path, Path, bool]]:
    rng = random.Random(seed)
    names = lfw.identities()
    genuine = [(lfw.photos(n)[1], lfw.photos(n)[2], True) for n in names]
    impostor = []
    for n in names:
        other = rng.choice([m for m in names if m != n])
        impostor.append((lfw.photos(n)[3], lfw.photos(other)[4], False))
    return genuine + impostor


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), lfw.evaluation_model()).running() as stack:
        rest = Rest(stack.rest, stack.token("accuracy"))
        collection = rest.collection("accuracy")

        def enroll(item):
            name, photo = item
            try:
                return name, rest.enroll(name, photo, [collection])["id"]
            except CallFailed:
                return name, None

        people = [(n, lfw.photos(n)[0]) for n in lfw.identities()]
        distractors = [(p.stem, p) for p in lfw.distractors()]
        enrolled = dict(parallel(enroll, people + distractors, WORKERS))
        ids = {n: enrolled.get(n) for n, _ in people}
        console.print(
            f"gallery: {sum(v is not None for v in enrolled.values())} persons "
            f"({len(people)} identities + {len(distractors)} distractors)"
        )

        probes = [(n, p) for n in lfw.identities() for p in lfw.photos(n)[1:]]

        def search(path: str, make_image):
            def one(item):
                name, photo = item
                response = rest.post(
                    path,
                    {
                        "images": [make_image(photo)],
                        "min_score": 0.5 if path.endswith("crops") else 0.2,
                        "search_mode": "ACCURATE",
                        "collection_id": collection,
                        "max_results": 5,
                    },
                )
                return rank(response.json().get("data", []), ids[name]) if response.status_code == 200 else None

            return parallel(one, probes, WORKERS)

        ranks = {
            "search/crops (120x120 crops)": search("/search/crops", lambda p: lfw.b64(lfw.crop(p))),
            "search (whole photos)": search("/search", whole),
        }

        def compare(item):
            a, b, same = item
            r = rest.post("/compare", {"probe": [whole(a)], "gallery": [whole(b)]})
            return (r.json()["data"]["score"] if r.status_code == 200 else None), same

        scored = parallel(compare, compare_pairs(), WORKERS)

    table = Table(title=f"1:N through REST, {len(probes)} probes, gallery of 1,300 (1,000 distractors)")
    for column in ("path", "rank-1", "rank-5"):
        table.add_column(column)
    for label, found in ranks.items():
        r1 = sum(r == 1 for r in found) / len(found)
        r5 = sum(r is not None and r <= 5 for r in found) / len(found)
        table.add_row(label, f"{r1:.3f}", f"{r5:.3f}")
    console.print(table)

    table = Table(title=f"1:1 /compare through REST, {len(scored)} pairs of whole photos (half genuine)")
    for column in ("min_score", "accuracy", "false match rate", "false non-match rate"):
        table.add_column(column)
    ok = [(s, same) for s, same in scored if s is not None]
    genuine = np.array([s for s, same in ok if same])
    impostor = np.array([s for s, same in ok if not same])
    for t in THRESHOLDS:
        fmr, fnmr = float((impostor >= t).mean()), float((genuine < t).mean())
        table.add_row(
            f"{t}", f"{1 - (fmr * len(impostor) + fnmr * len(genuine)) / len(ok):.3f}", f"{fmr:.3f}", f"{fnmr:.3f}"
        )
    console.print(table)
    if len(ok) < len(scored):
        console.print(f"{len(scored) - len(ok)} pairs refused (no face found)")


if __name__ == "__main__":
    main()
