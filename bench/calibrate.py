"""Fits a model's score calibration on labelled lfw-dev faces and reports,
on identities the fit did not see, the 1:1 error rates and the 1:N open-set
tables (bench/open_set.py), next to the pairwise score shipped before.

    python -m bench.calibrate [--model mobilefacenet-casia]

The fit is the product's (cli/facesearch_cli/calibration.py, which
`facesearch calibrate` runs through the service): here it runs in process on
lfw-dev, each face's enrollment cut against every other face's 120x120 crop,
and cut against cut. Identities are split in two: even-numbered ones fit,
odd-numbered ones test, so no test pair shares a person with a fitting pair.
The fitted values go into the ModelSpec (facesearch_common/specs.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from bench import open_set
from bench.common import console
from devkit import lfw
from facesearch_cli.calibration import Pairs, cross_pairs, error_rates, fit, pairs
from facesearch_common.specs import ModelSpec, get_spec

THRESHOLDS = open_set.THRESHOLDS
# The pairwise score shipped until 2026-12 (sigmoid(scale * (cosine -
# midpoint)), a class-balanced logistic fit), kept to compare against.
PAIRWISE_BEFORE = (0.2601, 12.356)


def pairwise_before(cosine):
    """The score before, of a cosine or an array of them."""
    midpoint, scale = PAIRWISE_BEFORE
    return 1 / (1 + np.exp(-scale * (cosine - midpoint)))


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
