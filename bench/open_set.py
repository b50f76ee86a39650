"""Open-set 1:N on lfw-dev: is this stranger in my gallery?

The protocol shared by bench/calibrate.py (in process) and bench/strangers.py
(through the REST API), on identities the calibration never saw: the fit
uses the even-numbered lfw-dev identities, these tables the odd-numbered
ones. Of those, half are enrolled from their first photo and half are
strangers; the probes are every other photo of both halves (half enrolled,
half strangers), as 120x120 crops. Galleries of about 100, 1,300 and every
lfw-dev face: the enrolled persons plus distractors, first the 1,000
distractor identities, then the fit identities' photos (one person each;
they are never probes).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from devkit import lfw

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
SIZES = (100, 1300, 0)  # 0: every face
BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Probe:
    path: Path
    identity: str | None  # None: a stranger


@dataclass(frozen=True)
class Protocol:
    enrolled: list[str]  # identity names, enrolled from their first photo
    strangers: list[str]
    extras: list[Path]  # distractor photos, in gallery order

    def probes(self) -> list[Probe]:
        return [Probe(p, name) for name in self.enrolled for p in lfw.photos(name)[1:]] + [
            Probe(p, None) for name in self.strangers for p in lfw.photos(name)[1:]
        ]

    def gallery(self, size: int) -> list[Path]:
        """The distractors of a gallery of `size` faces (0: all of them)."""
        return self.extras if size == 0 else self.extras[: size - len(self.enrolled)]

    def size(self, size: int) -> int:
        return len(self.enrolled) + len(self.gallery(size))


def protocol(seed: int = 0) -> Protocol:
    names = lfw.identities()
    held_out = names[1::2]
    random.Random(seed).shuffle(held_out)
    half = len(held_out) // 2
    fitted = [p for name in names[0::2] for p in lfw.photos(name)]
    return Protocol(sorted(held_out[:half]), sorted(held_out[half:]), lfw.distractors() + fitted)


@dataclass(frozen=True)
class Outcomes:
    """Each probe's top answer in one gallery."""

    faces: int  # faces searched
    scores: np.ndarray  # float [probes]: the top answer's score, 0 where none
    right: np.ndarray  # bool [probes]: the top answer is the probe's own person
    stranger: np.ndarray  # bool [probes]


def acceptance(outcomes: Outcomes, thresholds: Sequence[float] = THRESHOLDS) -> list[tuple[float, float, float, float]]:
    """Per min_score: (min_score, strangers accepted, enrolled found and
    accepted, precision of accepted top answers)."""
    rows = []
    for t in thresholds:
        accepted = outcomes.scores >= t
        precision = float(outcomes.right[accepted].mean()) if accepted.any() else float("nan")
        found = float((accepted & outcomes.right)[~outcomes.stranger].mean())
        rows.append((t, float(accepted[outcomes.stranger].mean()), found, precision))
    return rows


def reliability(outcomes: Outcomes, bins: Sequence[float] = BINS) -> list[tuple[float, float, int, float, float]]:
    """Top answers binned by score: (low, high, count, mean score, fraction right)."""
    rows = []
    for i, (low, high) in enumerate(itertools.pairwise(bins)):
        last = i == len(bins) - 2
        inside = (outcomes.scores >= low) & ((outcomes.scores <= high) if last else (outcomes.scores < high))
        inside &= outcomes.scores > 0  # probes with no answer at all are not top answers
        if inside.any():
            rows.append(
                (
                    low,
                    high,
                    int(inside.sum()),
                    float(outcomes.scores[inside].mean()),
                    float(outcomes.right[inside].mean()),
                )
            )
    return rows


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def acceptance_table(title: str, by_size: dict[str, Outcomes]) -> Table:
    rows = [
        (label, f"{t}", f"{strangers:.1%}", f"{found:.1%}", f"{precision:.3f}")
        for label, outcomes in by_size.items()
        for t, strangers, found, precision in acceptance(outcomes)
    ]
    return _table(title, ("faces searched", "min_score", "strangers accepted", "enrolled found", "precision"), rows)


def reliability_table(title: str, by_size: dict[str, Outcomes]) -> Table:
    rows = [
        (label, f"{low:.2f}-{high:.2f}", str(count), f"{mean:.3f}", f"{right:.3f}")
        for label, outcomes in by_size.items()
        for low, high, count, mean, right in reliability(outcomes)
    ]
    return _table(title, ("faces searched", "score bin", "top answers", "mean score", "fraction right"), rows)


def meets_targets(by_size: dict[str, Outcomes], slack: float = 0.02) -> list[str]:
    """What misses the targets: precision at least min_score (within `slack`)
    at every min_score and size, and at most 5% of strangers accepted at 0.9."""
    misses = []
    for label, outcomes in by_size.items():
        for t, strangers, _, precision in acceptance(outcomes):
            if precision == precision and precision < t - slack:
                misses.append(f"{label} faces: precision {precision:.3f} at min_score {t}")
            if t == 0.9 and strangers > 0.05:
                misses.append(f"{label} faces: {strangers:.1%} of strangers accepted at 0.9")
    return misses
