"""The crop recipe on real faces, in process: detect the landmarks on the crop
and align them to the model's template, versus simply resizing the crop."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from devkit import lfw
from devkit.recipe import Recipe
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

pytestmark = pytest.mark.lfw
IDENTITIES = 60


@pytest.fixture(scope="module")
def recipe():
    return Recipe(SPEC)


def aligned(recipe: Recipe, pixels: np.ndarray) -> np.ndarray:
    face = recipe.aligned(pixels)
    assert face is not None, "no face found"
    return face


def test_alignment_beats_resizing_on_real_crops(recipe):
    names = lfw.identities()[:IDENTITIES]
    gallery = recipe.embed([aligned(recipe, np.asarray(lfw.portrait(lfw.photos(n)[0]))) for n in names])
    hits_aligned = hits_resized = total = 0
    for i, name in enumerate(names):
        crops = [np.asarray(lfw.crop(p)) for p in lfw.photos(name)[1:]]
        a = recipe.embed([aligned(recipe, c) for c in crops])
        r = recipe.embed([np.asarray(Image.fromarray(c).resize((SPEC.width, SPEC.height))) for c in crops])
        hits_aligned += int(((a @ gallery.T).argmax(1) == i).sum())
        hits_resized += int(((r @ gallery.T).argmax(1) == i).sum())
        total += len(crops)
    print(
        f"\nrank-1 on {IDENTITIES} identities: aligned {hits_aligned / total:.3f}, resized {hits_resized / total:.3f}"
    )
    assert hits_aligned / total >= 0.93
    assert hits_aligned - hits_resized >= 0.1 * total


def test_same_person_scores_high_and_strangers_low(recipe):
    names = lfw.identities()[:20]
    first = recipe.embed([aligned(recipe, np.asarray(lfw.portrait(lfw.photos(n)[0]))) for n in names])
    second = recipe.embed([aligned(recipe, np.asarray(lfw.portrait(lfw.photos(n)[1]))) for n in names])
    sims = second @ first.T
    same, other = np.diag(sims), sims[~np.eye(len(names), dtype=bool)]
    assert same.mean() > 0.45 and other.mean() < 0.15
    assert SPEC.score(float(np.median(same))) > 0.7 and SPEC.score(float(np.median(other))) < 0.1
