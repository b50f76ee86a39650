"""The crop recipe on real faces, in process: detect the landmarks on the crop
and align them to the model's template, versus simply resizing the crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embedder import network
from embedder.detector import Detector
from facesearch_common.specs import MOBILEFACENET_CASIA as SPEC
from gateway.alignment import align
from gateway.faces import detection_input, faces_in
from tools import lfw

pytestmark = pytest.mark.lfw
IDENTITIES = 60


@pytest.fixture(scope="module")
def models():
    return Detector("cpu"), network.build(SPEC, lfw.MOBILEFACENET)


def aligned(detector, pixels: np.ndarray) -> np.ndarray:
    item = detection_input(pixels)
    out = detector.detect(item.pixels[None])
    faces = faces_in(item, out["boxes"][0], out["scores"][0], out["landmarks"][0])
    assert faces, "no face found"
    return align(pixels, faces[0], SPEC)


def embed(net, faces: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(np.stack(faces))).numpy()


def test_alignment_beats_resizing_on_real_crops(models):
    detector, net = models
    names = lfw.identities()[:IDENTITIES]
    gallery = embed(net, [aligned(detector, np.asarray(lfw.portrait(lfw.photos(n)[0]))) for n in names])
    hits_aligned = hits_resized = total = 0
    for i, name in enumerate(names):
        crops = [np.asarray(lfw.crop(p)) for p in lfw.photos(name)[1:]]
        a = embed(net, [aligned(detector, c) for c in crops])
        r = embed(net, [np.asarray(Image.fromarray(c).resize((SPEC.width, SPEC.height))) for c in crops])
        hits_aligned += int(((a @ gallery.T).argmax(1) == i).sum())
        hits_resized += int(((r @ gallery.T).argmax(1) == i).sum())
        total += len(crops)
    print(f"\nrank-1 on {IDENTITIES} identities: aligned {hits_aligned / total:.3f}, resized {hits_resized / total:.3f}")
    assert hits_aligned / total >= 0.93
    assert hits_aligned - hits_resized >= 0.1 * total


def test_same_person_scores_high_and_strangers_low(models):
    detector, net = models
    names = lfw.identities()[:20]
    first = embed(net, [aligned(detector, np.asarray(lfw.portrait(lfw.photos(n)[0]))) for n in names])
    second = embed(net, [aligned(detector, np.asarray(lfw.portrait(lfw.photos(n)[1]))) for n in names])
    sims = second @ first.T
    same, other = np.diag(sims), sims[~np.eye(len(names), dtype=bool)]
    assert same.mean() > 0.45 and other.mean() < 0.15
    assert SPEC.score(float(np.median(same))) > 0.7 and SPEC.score(float(np.median(other))) < 0.1
