"""The recipe on real faces, in process: the crop embedder (landmarks found
on the crop, the face aligned to the model's template, in one graph) against
today's baseline recipe (MTCNN, then Pillow) and against simply resizing the
crop for the face network."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from devkit import lfw
from devkit.legacy import LegacyRecipe
from devkit.recipe import Recipe
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC

pytestmark = pytest.mark.lfw
IDENTITIES = 60


@pytest.fixture(scope="module")
def recipe():
    return Recipe(SPEC)


@pytest.fixture(scope="module")
def legacy():
    return LegacyRecipe(SPEC)


def aligned(recipe: LegacyRecipe, pixels: np.ndarray) -> np.ndarray:
    face = recipe.aligned(pixels)
    assert face is not None, "no face found"
    return face


def portraits(recipe: Recipe, names: list[str], photo: int) -> np.ndarray:
    cuts = [recipe.cut(np.asarray(lfw.portrait(lfw.photos(n)[photo]))) for n in names]
    assert all(c is not None for c in cuts), "no face found"
    return recipe.crops(cuts)[0]


def test_the_crop_embedder_aligns_as_well_as_the_baseline_and_beats_resizing(recipe, legacy):
    names = lfw.identities()[:IDENTITIES]
    gallery = portraits(recipe, names, 0)
    old_gallery = legacy.embed([aligned(legacy, np.asarray(lfw.portrait(lfw.photos(n)[0]))) for n in names])
    hits = hits_old = hits_resized = total = 0
    for i, name in enumerate(names):
        crops = [np.asarray(lfw.crop(p)) for p in lfw.photos(name)[1:]]
        vectors, scores = recipe.crops(crops)
        old = legacy.embed([aligned(legacy, c) for c in crops])
        resized = legacy.embed([np.asarray(Image.fromarray(c).resize((SPEC.width, SPEC.height))) for c in crops])
        assert scores.min() >= 0.5, "a real face scored as no face"
        hits += int(((vectors @ gallery.T).argmax(1) == i).sum())
        hits_old += int(((old @ old_gallery.T).argmax(1) == i).sum())
        hits_resized += int(((resized @ old_gallery.T).argmax(1) == i).sum())
        total += len(crops)
    print(
        f"\nrank-1 on {IDENTITIES} identities: crop embedder {hits / total:.3f}, baseline {hits_old / total:.3f}, "
        f"resized {hits_resized / total:.3f}"
    )
    assert hits / total >= 0.95
    assert hits >= hits_old - 0.01 * total
    assert hits - hits_resized >= 0.1 * total


def test_same_person_scores_high_and_strangers_low(recipe):
    names = lfw.identities()[:20]
    first, second = portraits(recipe, names, 0), portraits(recipe, names, 1)
    sims = second @ first.T
    same, other = np.diag(sims), sims[~np.eye(len(names), dtype=bool)]
    assert same.mean() > 0.45 and other.mean() < 0.15
    assert (
        SPEC.calibration.score(float(np.median(same))) > 0.7 and SPEC.calibration.score(float(np.median(other))) < 0.1
    )
