"""Recognition accuracy on lfw-dev, two ways.

In process, on the same probes: the recipe before the crop embedder (MTCNN
on a canvas, alignment with Pillow, the face network) against the crop
embedder (devkit/recipe.py), 1:N with 300 identities enrolled from their
first photo's portrait and the 1,000 distractors, and 1,200 probes cut the
way a camera's detector cuts them: MTCNN's box on the photo plus a margin of
0 to 30% (seeded), scaled to fit 120x120. Rank-1 and rank-5, and 1:1
accuracy on the 600 compare pairs at min_score 0.5 to 0.9.

Through the running service's REST API (Envoy):

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
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.table import Table

from bench.common import console
from devkit import lfw
from devkit.client import CallFailed, Rest, parallel
from devkit.legacy import LegacyRecipe
from devkit.recipe import Recipe
from devkit.stack import Stack
from facesearch_common import triton
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

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


def camera_crop(path: Path, detector, rng: random.Random) -> np.ndarray | None:
    """MTCNN's box on the whole photo plus 0-30% margin, fit in 120x120."""
    image = Image.open(path).convert("RGB")
    out = detector.detect(np.asarray(image)[None])
    if out[triton.SCORES][0, 0] < 0.9:
        return None
    x1, y1, x2, y2 = out[triton.BOXES][0, 0].tolist()
    margin = rng.uniform(0, 0.3)
    w, h = (x2 - x1) * margin / 2, (y2 - y1) * margin / 2
    box = (max(0, x1 - w), max(0, y1 - h), min(image.width, x2 + w), min(image.height, y2 + h))
    crop = image.crop(tuple(round(v) for v in box))
    crop.thumbnail((120, 120))
    return np.asarray(crop)


def ranks(gallery: np.ndarray, probes: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    order = np.argsort(-(probes @ gallery.T), axis=1)[:, :5]
    hit = order == labels[:, None]
    return float(hit[:, 0].mean()), float(hit.any(axis=1).mean())


def in_process() -> None:
    """Both recipes on the same gallery, probes and pairs."""
    legacy, recipe = LegacyRecipe(SPEC), Recipe(SPEC)
    names = lfw.identities()
    gallery_photos = [lfw.photos(n)[0] for n in names] + lfw.distractors()
    rng = random.Random(0)
    probes = [(i, camera_crop(p, legacy.detector, rng)) for i, n in enumerate(names) for p in lfw.photos(n)[1:]]
    kept = [(i, c) for i, c in probes if c is not None]
    labels = np.array([i for i, _ in kept])
    table = Table(title=f"1:N in process, {len(kept)} camera-cut probes, gallery of {len(gallery_photos):,}")
    for column in ("recipe", "rank-1", "rank-5", "probes refused (no face)", "s"):
        table.add_column(column)

    def legacy_vectors(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        faces = [legacy.aligned(im) for im in images]
        found = np.array([f is not None for f in faces])
        dim = SPEC.dim
        vectors = np.zeros((len(images), dim), np.float32)
        if found.any():
            vectors[found] = legacy.embed([f for f in faces if f is not None])
        return vectors, found

    def recipe_vectors(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        vectors, scores = recipe.crops(images)
        return vectors, scores >= triton.MIN_FACE_SCORE

    portraits = [np.asarray(lfw.portrait(p)) for p in gallery_photos]
    cuts = [recipe.cut(p) for p in portraits]
    for label, gallery_of, probe_of in (
        ("before: MTCNN + Pillow alignment", lambda: legacy_vectors(portraits)[0], legacy_vectors),
        (
            "crop embedder",
            lambda: recipe_vectors([c if c is not None else p for c, p in zip(cuts, portraits, strict=True)])[0],
            recipe_vectors,
        ),
    ):
        started = time.perf_counter()
        gallery = gallery_of()
        vectors, found = probe_of([c for _, c in kept])
        r1, r5 = ranks(gallery, np.where(found[:, None], vectors, 0), labels)
        table.add_row(label, f"{r1:.4f}", f"{r5:.4f}", str(int((~found).sum())), f"{time.perf_counter() - started:.0f}")
    console.print(table)

    table = Table(title="1:1 in process, the 600 compare pairs of whole photos (half genuine)")
    for column in ("recipe", *(f"accuracy at {t}" for t in THRESHOLDS)):
        table.add_column(column)
    pairs = compare_pairs()
    photos = [np.asarray(Image.open(p).convert("RGB")) for a, b, _ in pairs for p in (a, b)]
    same = np.array([s for _, _, s in pairs])
    for label, vectors in (
        ("before: MTCNN + Pillow alignment", legacy_vectors(photos)[0]),
        (
            "crop embedder",
            recipe_vectors(
                [c if c is not None else p for c, p in zip([recipe.cut(p) for p in photos], photos, strict=True)]
            )[0],
        ),
    ):
        cosines = (vectors[0::2] * vectors[1::2]).sum(axis=1)
        scores = np.array([SPEC.calibration.score(float(c)) for c in cosines])
        table.add_row(label, *(f"{np.mean((scores >= t) == same):.3f}" for t in THRESHOLDS))
    console.print(table)


def main() -> None:
    in_process()
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
