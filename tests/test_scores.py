"""The score mapping (facesearch_common/scores.py): a probability, pairwise at
N = 1, lower for the same cosine as the gallery grows."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from facesearch_common.scores import UNCALIBRATED, Calibration
from facesearch_common.specs import MOBILEFACENET_CASIA, SPECS

COSINES = np.linspace(-1, 1, 2001).tolist()
SIZES = (1, 2, 10, 100, 1_300, 100_000, 10_000_000)
CALIBRATIONS = [s.calibration for s in SPECS.values()] + [
    UNCALIBRATED,
    Calibration(0.5, 0.1, 0.0, 0.2),  # wider impostors: a vertex inside [-1, 1]
]


@pytest.mark.parametrize("calibration", CALIBRATIONS, ids=str)
def test_scores_are_probabilities_monotonic_in_cosine_and_falling_with_faces(calibration):
    table = np.array([[calibration.score(c, n) for c in COSINES] for n in SIZES])
    assert ((table >= 0) & (table <= 1)).all()
    assert (np.diff(table, axis=1) >= 0).all()  # a higher cosine never scores lower
    assert (np.diff(table, axis=0) <= 0).all()  # more faces searched never score higher
    middle = COSINES.index(0.5)
    assert (np.diff(table[:, middle]) < 0).all()  # and strictly lower where it matters


def test_one_face_searched_is_the_pairwise_likelihood_ratio():
    calibration = MOBILEFACENET_CASIA.calibration
    for c in (-0.2, 0.1, 0.3, 0.45, 0.7, 0.95):
        odds = math.exp(calibration.log_likelihood_ratio(c))
        assert calibration.score(c, 1) == pytest.approx(odds / (1 + odds), rel=1e-12)
        assert calibration.score(c) == calibration.score(c, 1) == calibration.score(c, 0)


def test_the_threshold_is_the_lowest_passing_pairwise_cosine():
    calibration = MOBILEFACENET_CASIA.calibration
    for score in (0.5, 0.7, 0.8, 0.9, 0.99):
        c = calibration.cosine(score)
        assert calibration.score(c) >= score > calibration.score(c - 1e-9)
        # What a search with N faces passes, the index's pairwise threshold passes too.
        assert all(calibration.score(c - 1e-6, n) < score for n in SIZES)


def test_the_shipped_fit_agrees_with_lfw_figures():
    # Measured on held-out lfw-dev identities (bench/calibrate.py): a cosine
    # of 0.5 is almost surely one person in a 1:1 comparison, but not the best
    # of 1,300 impostors; 0.7 still is.
    calibration = MOBILEFACENET_CASIA.calibration
    assert calibration.score(0.5) > 0.95
    assert calibration.score(0.5, 1_300) < 0.5 < calibration.score(0.7, 1_300)


@pytest.mark.parametrize("calibration", CALIBRATIONS, ids=str)
def test_a_weak_match_is_one_sd_under_the_genuine_mean(calibration):
    genuine = NormalDist(calibration.genuine_mean, calibration.genuine_sd)
    assert genuine.cdf(calibration.weak_cosine) == pytest.approx(0.1587, abs=1e-4)


def test_mobilefacenets_weak_line_is_the_one_fast_was_measured_at():
    # bench/RESULTS.md, "FAST's second look": 0.515 for MobileFaceNet.
    assert MOBILEFACENET_CASIA.calibration.weak_cosine == pytest.approx(0.5153, abs=1e-4)
