"""Whole photos: does YuNet find faces as well as MTCNN? In one run, on
every lfw-dev photo as it is (250x250 news photos, the subject in the
middle, others often beside it), both detectors with the gateway's rules
on top (the largest face is the one; an enrollment photo whose second face
is at least half as large is refused, `multiple_faces`):

- how often each finds a face, finds the subject (the chosen face holds the
  photo's centre), and refuses the photo as showing two people; how far
  their chosen boxes agree (IoU); ms per photo, one photo at a time;
- rank-1 and rank-5 when each detector cuts the faces for the same crop
  embedder: the 300 identities enrolled from their first photo with the
  1,000 distractors, the other 1,200 photos as probes.

YuNet runs as the face detector is served (embedder/photos.py: OpenCV
Zoo's weights, decoded the way OpenCV's FaceDetectorYN does, its default
score 0.9, fast NMS at IoU 0.3, on the gateway's 320x320 layout); MTCNN as it
was served until YuNet replaced it (devkit/legacy.py).

    python -m bench.detectors
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from rich.table import Table

from bench.common import console
from devkit import legacy, lfw
from devkit.recipe import Recipe
from facesearch_common.specs import MOBILEFACENET_CASIA
from gateway import canvas
from gateway.pipeline import SECOND_FACE_RATIO


def area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / (area(a) + area(b) - inter)


class YuNetPhotos:
    """The face detector as served (embedder/photos.py) on the gateway's layout."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def boxes(self, pixels: np.ndarray) -> list[np.ndarray]:
        return [f.box for f in self.recipe.faces(pixels)]


class MtcnnPhotos:
    """MTCNN as it was served, on its own layout (devkit/legacy.py)."""

    def __init__(self) -> None:
        self.detector = legacy.Detector("cpu")

    def boxes(self, pixels: np.ndarray) -> list[np.ndarray]:
        return [f.box for f in self.detector.faces(pixels)]


@dataclass
class Tally:
    photos: int = 0
    found: int = 0
    subject: int = 0
    two_people: int = 0
    seconds: float = 0.0
    chosen: list[np.ndarray | None] = field(default_factory=list)


def tally(detector: YuNetPhotos | MtcnnPhotos, photos: list[np.ndarray]) -> Tally:
    t = Tally(photos=len(photos))
    detector.boxes(photos[0])  # warm
    for pixels in photos:
        started = time.perf_counter()
        boxes = detector.boxes(pixels)
        t.seconds += time.perf_counter() - started
        t.chosen.append(boxes[0] if boxes else None)
        if not boxes:
            continue
        t.found += 1
        x1, y1, x2, y2 = boxes[0]
        cy, cx = pixels.shape[0] / 2, pixels.shape[1] / 2
        t.subject += int(x1 <= cx <= x2 and y1 <= cy <= y2)
        t.two_people += int(len(boxes) > 1 and area(boxes[1]) >= SECOND_FACE_RATIO * area(boxes[0]))
    return t


def ranks(recipe: Recipe, photos: list, chosen: list, labels: list[int], enrolled: list[bool]) -> tuple[float, float]:
    """Rank-1 and rank-5 of the probes (a probe without a face is a miss),
    every face cut where `chosen` puts it and embedded by the crop embedder."""
    cuts = {i: canvas.cut(photos[i], box) for i, box in enumerate(chosen) if box is not None}
    vectors = dict(zip(cuts, recipe.crops(list(cuts.values()))[0], strict=True))
    gallery = [i for i in vectors if enrolled[i]]
    every_probe = [i for i, e in enumerate(enrolled) if not e]
    probes = [i for i in every_probe if i in vectors]
    sims = np.stack([vectors[i] for i in probes]) @ np.stack([vectors[i] for i in gallery]).T
    top = np.array([labels[i] for i in gallery])[np.argsort(-sims, axis=1)[:, :5]]
    truth = np.array([labels[i] for i in probes])[:, None]
    return float((top[:, :1] == truth).sum() / len(every_probe)), float(
        (top == truth).any(axis=1).sum() / len(every_probe)
    )


def main() -> None:
    torch.set_num_threads(1)  # one photo on one core, as a served instance runs
    paths, labels, enrolled = [], [], []
    for label, name in enumerate(lfw.identities()):
        for k, path in enumerate(lfw.photos(name)):
            paths.append(path)
            labels.append(label)
            enrolled.append(k == 0)
    for path in lfw.distractors():
        paths.append(path)
        labels.append(-1)
        enrolled.append(True)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    recipe = Recipe(MOBILEFACENET_CASIA)
    found = {
        "MTCNN (served before)": tally(MtcnnPhotos(), photos),
        "YuNet (served)": tally(YuNetPhotos(recipe), photos),
    }
    mtcnn, yu = found.values()
    agree = [iou(a, b) for a, b in zip(mtcnn.chosen, yu.chosen, strict=True) if a is not None and b is not None]

    torch.set_num_threads(2)
    table = Table(title=f"whole lfw-dev photos ({len(photos):,}): MTCNN and YuNet, the gateway's rules on top")
    for column in ("detector", "face found", "subject chosen", "two people", "ms/photo", "rank-1", "rank-5"):
        table.add_column(column, justify="right")
    for name, t in found.items():
        r1, r5 = ranks(recipe, photos, t.chosen, labels, enrolled)
        table.add_row(
            name,
            f"{t.found / t.photos:.4f}",
            f"{t.subject / t.photos:.4f}",
            f"{t.two_people / t.photos:.4f}",
            f"{1e3 * t.seconds / t.photos:.1f}",
            f"{r1:.4f}",
            f"{r5:.4f}",
        )
    console.print(table)
    console.print(
        f"chosen boxes where both found a face: IoU median {np.median(agree):.3f}, "
        f"share >= 0.5 {np.mean(np.array(agree) >= 0.5):.4f} ({len(agree)} photos); "
        f"ms/photo ratio YuNet / MTCNN {yu.seconds / mtcnn.seconds:.2f}"
    )


if __name__ == "__main__":
    main()
