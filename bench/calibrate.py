"""Fits a model's score calibration on labelled lfw-dev faces and reports,
on identities the fit did not see, the 1:1 error rates and the 1:N open-set
tables (bench/open_set.py), next to the pairwise score shipped before.

    python -m bench.calibrate [--model mobilefacenet-casia]

The calibration (facesearch_common/scores.py) is two normal distributions of
cosines: genuine pairs (one person) and impostor pairs (two persons), each
fitted by regressing the pairs' quantiles on the normal's: the genuine one
between its 10th and 90th percentiles, where a search decides, and the
impostor one in its upper tail (the top 10% down to 1e-5), where a search's
best impostors fall. Pairs are the enrolled way against the searched way:
each face's enrollment cut against every other face's 120x120 crop, and cut
against cut (1:1 compares photos). Identities are split in two: even-numbered
ones fit, odd-numbered ones test, so no test pair shares a person with a
fitting pair. The fitted values go into the ModelSpec (facesearch_common/specs.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from bench import open_set
from bench.common import console
from devkit import lfw
from facesearch_common.scores import Calibration
from facesearch_common.specs import ModelSpec, get_spec

THRESHOLDS = open_set.THRESHOLDS
GENUINE_QUANTILES = np.linspace(0.1, 0.9, 17)
IMPOSTOR_QUANTILES = 1 - np.logspace(-1, -5, 17)
# The pairwise score shipped until 2026-12 (sigmoid(scale * (cosine -
# midpoint)), a class-balanced logistic fit), kept to compare against.
PAIRWISE_BEFORE = (0.2601, 12.356)


def pairwise_before(cosine):
    """The score before, of a cosine or an array of them."""
    midpoint, scale = PAIRWISE_BEFORE
    return 1 / (1 + np.exp(-scale * (cosine - midpoint)))


@dataclass(frozen=True)
class Pairs:
    cosines: np.ndarray  # float [n]
    same: np.ndarray  # bool [n]

    def __add__(self, other: Pairs) -> Pairs:
        return Pairs(np.concatenate([self.cosines, other.cosines]), np.concatenate([self.same, other.same]))


def pairs(vectors: np.ndarray, labels: np.ndarray) -> Pairs:
    """Every unordered pair of faces: its cosine and whether it is one person."""
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(labels), k=1)
    return Pairs(sims[upper], (labels[:, None] == labels[None, :])[upper])


def cross_pairs(probes: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> Pairs:
    """Each probe against every gallery face but its own photo's."""
    sims = probes @ gallery.T
    other = ~np.eye(len(labels), dtype=bool)
    return Pairs(sims[other], (labels[:, None] == labels[None, :])[other])


def fit_normal(values: np.ndarray, quantiles: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of the normal whose quantiles best match `values`' at `quantiles`."""
    z = np.array([NormalDist().inv_cdf(float(q)) for q in quantiles])
    sd, mean = np.polyfit(z, np.quantile(values, quantiles), 1)
    return float(mean), float(sd)


def fit(fitting: Pairs) -> Calibration:
    genuine = fit_normal(fitting.cosines[fitting.same], GENUINE_QUANTILES)
    impostor = fit_normal(fitting.cosines[~fitting.same], IMPOSTOR_QUANTILES)
    return Calibration(*(round(v, 4) for v in (*genuine, *impostor)))


def error_rates(calibration: Calibration, test: Pairs, thresholds=THRESHOLDS) -> list[tuple[float, float, float]]:
    """(min_score, FMR, FNMR) of 1:1 comparisons at each threshold."""
    rows = []
    for t in thresholds:
        accept = test.cosines >= calibration.cosine(t)
        rows.append((t, float(accept[~test.same].mean()), float((~accept[test.same]).mean())))
    return rows


@dataclass(frozen=True)
class Faces:
    """Every lfw-dev photo embedded both ways, in lfw order (identities, then distractors)."""

    cuts: np.ndarray  # [n, d]: the enrollment cut of the photo's portrait
    crops: np.ndarray  # [n, d]: its 120x120 crop, as search/crops gets it
    labels: np.ndarray  # identity index; distractor k is -1 - k
    paths: list

    def rows(self, paths) -> np.ndarray:
        index = {p: i for i, p in enumerate(self.paths)}
        return np.array([index[p] for p in paths])


def embed_lfw_dev(spec: ModelSpec) -> Faces:
    from devkit.recipe import Recipe

    recipe = Recipe(spec)
    names = lfw.identities()
    paths = [p for name in names for p in lfw.photos(name)] + lfw.distractors()
    labels = [i for i, name in enumerate(names) for _ in lfw.photos(name)] + [
        -1 - k for k in range(len(lfw.distractors()))
    ]
    cuts = []
    for path in paths:
        cut = recipe.cut(np.asarray(lfw.portrait(path)))
        cuts.append(cut if cut is not None else np.asarray(lfw.crop(path)))  # LFW's photos all hold a face
    crops = [np.asarray(lfw.crop(path)) for path in paths]
    return Faces(recipe.crops(cuts)[0], recipe.crops(crops)[0], np.array(labels), paths)


def split(faces: Faces) -> tuple[Pairs, Pairs]:
    """(fitting pairs, held-out 1:1 pairs): even identities both ways; odd ones cut against cut."""
    even = (faces.labels >= 0) & (faces.labels % 2 == 0)
    odd = (faces.labels >= 0) & (faces.labels % 2 == 1)
    fitting = cross_pairs(faces.crops[even], faces.cuts[even], faces.labels[even]) + pairs(
        faces.cuts[even], faces.labels[even]
    )
    return fitting, pairs(faces.cuts[odd], faces.labels[odd])


def open_set_outcomes(faces: Faces, protocol: open_set.Protocol, size: int, score) -> open_set.Outcomes:
    """Each probe's top answer in the gallery of `size`, scored by score(cosine, faces)."""
    enrolled = [lfw.photos(name)[0] for name in protocol.enrolled]
    gallery = faces.rows(enrolled + protocol.gallery(size))
    probes = protocol.probes()
    sims = faces.crops[faces.rows([p.path for p in probes])] @ faces.cuts[gallery].T
    top = sims.argmax(axis=1)
    owner = np.array(protocol.enrolled + [None] * (len(gallery) - len(enrolled)), dtype=object)
    right = np.array([p.identity is not None and owner[t] == p.identity for p, t in zip(probes, top, strict=True)])
    scores = np.array([score(float(c), len(gallery)) for c in sims.max(axis=1)])
    return open_set.Outcomes(len(gallery), scores, right, np.array([p.identity is None for p in probes]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilefacenet-casia")
    args = parser.parse_args()
    spec = get_spec(args.model)
    faces = embed_lfw_dev(spec)
    fitting, test = split(faces)
    fitted = fit(fitting)
    console.print(
        f"{spec.name}: {len(faces.labels)} faces; fit on {fitting.same.sum()} genuine + {(~fitting.same).sum()} "
        f"impostor pairs, 1:1 tested on {test.same.sum()} genuine + {(~test.same).sum()} impostor pairs"
    )
    console.print(f"fitted: {fitted}\nspec now: {spec.calibration}")
    console.print("min_score  FMR        FNMR     (held-out 1:1 pairs; before: FMR, FNMR)")
    for t, fmr, fnmr in error_rates(fitted, test):
        accept = pairwise_before(test.cosines) >= t
        console.print(
            f"{t:<9}  {fmr:<9.5f}  {fnmr:.4f}   ({accept[~test.same].mean():.5f}, {(~accept[test.same]).mean():.4f})"
        )
    protocol = open_set.protocol()
    for name, score in (("1:N score", fitted.score), ("pairwise score before", lambda c, n: pairwise_before(c))):
        by_size = {f"{protocol.size(s):,}": open_set_outcomes(faces, protocol, s, score) for s in open_set.SIZES}
        console.print(open_set.acceptance_table(f"{name}, in process (held-out identities)", by_size))
        console.print(open_set.reliability_table(f"{name}: reliability of top answers", by_size))
        misses = open_set.meets_targets(by_size)
        console.print(f"{name}: " + ("meets the targets" if not misses else "misses: " + "; ".join(misses)))


if __name__ == "__main__":
    main()
