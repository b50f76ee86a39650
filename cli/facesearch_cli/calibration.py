"""Fitting a model's calibration on labelled faces, and reporting how it
does on identities the fit did not see: the one home of the fit, used by
`facesearch calibrate` (on the operator's faces, through the service) and
`bench/calibrate.py` (on lfw-dev, in process).

The calibration (scores.py) is two normal distributions of cosines: genuine
pairs (one person) and impostor pairs (two persons), each fitted by
regressing the pairs' quantiles on the normal's: the genuine one between its
10th and 90th percentiles, where a search decides, and the impostor one in
its upper tail (the top 10% down to 1e-5), where a search's best impostors
fall. Pairs are the enrolled way against the searched way: each face's
enrollment embedding against every other face's probe embedding (a crop as
search/crops gets it), and enrolled against enrolled (1:1 compares photos).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from facesearch_common.scores import Calibration

GENUINE_QUANTILES = np.linspace(0.1, 0.9, 17)
IMPOSTOR_QUANTILES = 1 - np.logspace(-1, -5, 17)
THRESHOLDS = (0.5, 0.7, 0.9)
BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)  # the reliability table's score bins
# Too little data fits nothing: the genuine fit needs pairs of one person,
# and the held-out report needs persons of its own.
MIN_PERSONS = 40
MIN_PERSONS_WITH_PAIRS = 20

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pairs:
    cosines: npt.NDArray[np.float64]
    same: npt.NDArray[np.bool_]

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(np.concatenate([self.cosines, other.cosines]), np.concatenate([self.same, other.same]))

    @property
    def genuine(self) -> int:
        return int(self.same.sum())

    @property
    def impostor(self) -> int:
        return int((~self.same).sum())


@dataclass(frozen=True)
class Faces:
    """Labelled faces embedded both ways, row by row."""

    enrolled: Vectors  # [n, d]: as enrollment embeds a photo
    probes: Vectors  # [n, d]: as search/crops embeds a crop of it
    labels: npt.NDArray[np.int64]  # the person's index

    def of(self, keep: npt.NDArray[np.bool_]) -> Faces:
        return Faces(self.enrolled[keep], self.probes[keep], self.labels[keep])


def pairs(vectors: Vectors, labels: npt.NDArray[np.int64]) -> Pairs:
    """Every unordered pair of faces: its cosine and whether it is one person."""
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(labels), k=1)
    return Pairs(sims[upper].astype(np.float64), (labels[:, None] == labels[None, :])[upper])


def cross_pairs(probes: Vectors, gallery: Vectors, labels: npt.NDArray[np.int64]) -> Pairs:
    """Each probe against every gallery face but its own photo's."""
    sims = probes @ gallery.T
    other = ~np.eye(len(labels), dtype=bool)
    return Pairs(sims[other].astype(np.float64), (labels[:, None] == labels[None, :])[other])


def fitting_pairs(faces: Faces) -> Pairs:
    return cross_pairs(faces.probes, faces.enrolled, faces.labels) + pairs(faces.enrolled, faces.labels)


def fit_normal(values: npt.NDArray[np.float64], quantiles: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(mean, sd) of the normal whose quantiles best match `values`' at `quantiles`."""
    z = np.array([NormalDist().inv_cdf(float(q)) for q in quantiles])
    sd, mean = np.polyfit(z, np.quantile(values, quantiles), 1)
    return float(mean), float(sd)


def fit(fitting: Pairs) -> Calibration:
    genuine = fit_normal(fitting.cosines[fitting.same], GENUINE_QUANTILES)
    impostor = fit_normal(fitting.cosines[~fitting.same], IMPOSTOR_QUANTILES)
    return Calibration(*(round(v, 4) for v in (*genuine, *impostor)))


def error_rates(
    calibration: Calibration, test: Pairs, thresholds: tuple[float, ...] = THRESHOLDS
) -> list[tuple[float, float, float]]:
    """(min_score, false match rate, false non-match rate) of 1:1 comparisons."""
    rows = []
    for t in thresholds:
        accept = test.cosines >= calibration.cosine(t)
        rows.append((t, float(accept[~test.same].mean()), float((~accept[test.same]).mean())))
    return rows


def split(faces: Faces) -> tuple[Faces, Faces]:
    """(fitting, held out): even-numbered persons fit, odd ones test, so no
    test face shares a person with a fitting one."""
    even = faces.labels % 2 == 0
    return faces.of(even), faces.of(~even)


def too_little(persons: int, with_pairs: int) -> str | None:
    """Why `persons` (of whom `with_pairs` have two or more faces) cannot be
    fitted and tested, or None."""
    if persons >= MIN_PERSONS and with_pairs >= MIN_PERSONS_WITH_PAIRS:
        return None
    return (
        f"a calibration needs at least {MIN_PERSONS} persons, {MIN_PERSONS_WITH_PAIRS} of them with two or more "
        f"photos with a face (half fit it, half test it); this has {persons} persons, {with_pairs} with two or more"
    )


@dataclass(frozen=True)
class Outcomes:
    """A 1:N run over held-out persons: each probe's top answer."""

    faces: int  # faces searched
    scores: npt.NDArray[np.float64]  # the top answer's score
    right: npt.NDArray[np.bool_]  # it is the probe's person
    stranger: npt.NDArray[np.bool_]  # the probe's person is not enrolled

    def at(self, threshold: float) -> tuple[float, float, float]:
        """(enrolled found, strangers accepted, precision) at `threshold`."""
        accepted = self.scores >= threshold
        enrolled = ~self.stranger
        found = float((accepted & self.right)[enrolled].mean()) if enrolled.any() else float("nan")
        strangers = float(accepted[self.stranger].mean()) if self.stranger.any() else float("nan")
        precision = float(self.right[accepted].mean()) if accepted.any() else float("nan")
        return found, strangers, precision

    def reliability(self, edges: tuple[float, ...] = BINS) -> list[tuple[str, int, float, float]]:
        """(score bin, answers, mean score, share right) of the top answers."""
        rows = []
        for low, high in itertools.pairwise(edges):
            inside = (self.scores >= low) & (self.scores < high)
            if inside.any():
                mean, right = float(self.scores[inside].mean()), float(self.right[inside].mean())
                rows.append((f"{low:.1f}-{min(high, 1):.1f}", int(inside.sum()), mean, right))
        return rows


def one_to_n(
    held_out: Faces, distractors: Vectors, calibration: Calibration, sizes: tuple[int, ...]
) -> dict[int, Outcomes]:
    """Held-out persons searched for, half of them enrolled (their first
    face) and half strangers, each of their faces a probe (a crop), in
    galleries of `sizes` faces: the enrolled ones, then `distractors` (faces of
    persons neither enrolled nor searched for). A size beyond the faces there
    are is replaced by all of them."""
    persons = np.unique(held_out.labels)
    enrolled_persons = set(persons[::2].tolist())
    first = {int(p): int(np.flatnonzero(held_out.labels == p)[0]) for p in persons}
    gallery_rows = [first[p] for p in sorted(enrolled_persons)]
    gallery = held_out.enrolled[gallery_rows]
    owners = held_out.labels[gallery_rows]
    probe_rows = [i for i in range(len(held_out.labels)) if i not in set(gallery_rows)]
    genuine = [i for i in probe_rows if held_out.labels[i] in enrolled_persons]
    strangers = [i for i in probe_rows if held_out.labels[i] not in enrolled_persons][: len(genuine)]
    rows = genuine + strangers
    probes = held_out.probes[rows]
    labels = held_out.labels[rows]
    found = {}
    most = len(gallery) + len(distractors)
    for size in [s for s in sizes if s <= most] + ([most] if max(sizes) > most else []):
        extra = max(0, size - len(gallery))
        searched = np.concatenate([gallery, distractors[:extra]])
        owner = np.concatenate([owners, np.full(extra, -1)])
        sims = probes @ searched.T
        top = sims.argmax(axis=1)
        scores = np.array([calibration.score(float(c), len(searched)) for c in sims.max(axis=1)])
        right = owner[top] == labels
        stranger = np.array([label not in enrolled_persons for label in labels])
        found[len(searched)] = Outcomes(len(searched), scores, right, stranger)
    return found
