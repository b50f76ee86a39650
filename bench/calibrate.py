"""Fits a model's score calibration on labelled lfw-dev pairs and reports
false match / false non-match rates on pairs the fit did not see.

    python -m bench.calibrate [--model mobilefacenet-casia]

The score is P(same person | cosine) = sigmoid(scale * (cosine - midpoint)),
a logistic regression on the cosine of a pair, fitted with genuine and
impostor pairs weighted equally (a prior of one half: the threshold means the
same whatever the gallery's size). Identities are split in two: even-numbered
ones fit, odd-numbered ones test, so no test pair shares a person with a
fitting pair. The fitted values go into the ModelSpec (facesearch_common/specs.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from PIL import Image

from devkit import lfw
from facesearch_common.specs import ModelSpec, get_spec

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Pairs:
    cosines: np.ndarray  # float [n]
    same: np.ndarray  # bool [n]


def pairs(vectors: np.ndarray, labels: np.ndarray) -> Pairs:
    """Every unordered pair of faces: its cosine and whether it is one person."""
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(labels), k=1)
    return Pairs(sims[upper], (labels[:, None] == labels[None, :])[upper])


def fit_logistic(cosines: np.ndarray, same: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(midpoint, scale) of a class-balanced logistic fit, by Newton's method."""
    x = np.stack([cosines, np.ones_like(cosines)], axis=1)
    y = same.astype(np.float64)
    weight = np.where(same, 0.5 / same.sum(), 0.5 / (~same).sum())
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-x @ beta))
        gradient = x.T @ (weight * (y - p))
        hessian = (x * (weight * p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    scale, bias = beta
    return float(-bias / scale), float(scale)


def error_rates(spec: ModelSpec, test: Pairs, thresholds=THRESHOLDS) -> list[tuple[float, float, float]]:
    """(min_score, FMR, FNMR) at each threshold."""
    rows = []
    for t in thresholds:
        accept = test.cosines >= spec.cosine(t)
        rows.append((t, float(accept[~test.same].mean()), float((~accept[test.same]).mean())))
    return rows


def embed_lfw_dev(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Every lfw-dev identity photo through the recognition recipe: (vectors, identity labels)."""
    from devkit.recipe import Recipe

    recipe = Recipe(spec)
    cuts, labels = [], []
    for label, name in enumerate(lfw.identities()):
        for path in lfw.photos(name):
            cut = recipe.cut(np.asarray(Image.open(path).convert("RGB")))
            if cut is not None:
                cuts.append(cut)
                labels.append(label)
    return recipe.crops(cuts)[0], np.array(labels)


def split(vectors: np.ndarray, labels: np.ndarray) -> tuple[Pairs, Pairs]:
    fit_rows, test_rows = labels % 2 == 0, labels % 2 == 1
    return pairs(vectors[fit_rows], labels[fit_rows]), pairs(vectors[test_rows], labels[test_rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilefacenet-casia")
    args = parser.parse_args()
    spec = get_spec(args.model)
    vectors, labels = embed_lfw_dev(spec)
    fit, test = split(vectors, labels)
    midpoint, scale = fit_logistic(fit.cosines, fit.same)
    fitted = ModelSpec(**{**spec.__dict__, "score_midpoint": round(midpoint, 4), "score_scale": round(scale, 3)})
    print(
        f"{spec.name}: {len(labels)} faces; fit on {fit.same.sum()} genuine + {(~fit.same).sum()} impostor pairs, "
        f"tested on {test.same.sum()} genuine + {(~test.same).sum()} impostor pairs"
    )
    print(
        f"fitted: score_midpoint={fitted.score_midpoint} score_scale={fitted.score_scale} "
        f"(spec now: {spec.score_midpoint}, {spec.score_scale})"
    )
    print("min_score  FMR        FNMR   (held-out pairs)")
    for t, fmr, fnmr in error_rates(fitted, test):
        print(f"{t:<9}  {fmr:<9.5f}  {fnmr:.4f}")
    print(f"cosine at min_score 0.5: {fitted.cosine(0.5):.4f}; at 0.9: {fitted.cosine(0.9):.4f}")


if __name__ == "__main__":
    main()
