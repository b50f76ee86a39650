"""The calibration fit (bench/calibrate.py) on pairs with a known answer."""

import numpy as np

from bench.calibrate import error_rates, fit_logistic, pairs, split
from facesearch_common.specs import MOBILEFACENET_CASIA


def test_the_fit_recovers_a_known_logistic_law():
    rng = np.random.default_rng(0)
    cosines = rng.uniform(-0.2, 1.0, 200_000)
    same = rng.random(cosines.size) < 1 / (1 + np.exp(-9.0 * (cosines - 0.35)))
    midpoint, scale = fit_logistic(cosines, same)
    # Class balancing shifts the midpoint by log(prior odds)/scale.
    prior = np.log(same.mean() / (1 - same.mean()))
    assert abs(scale - 9.0) < 0.3
    assert abs(midpoint - (0.35 + prior / 9.0)) < 0.01


def test_pairs_split_by_identity_and_rates_move_the_right_way():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 16))
    labels = np.repeat(np.arange(20), 4)
    vectors = centres[labels] + 0.3 * rng.standard_normal((80, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fit, test = split(vectors, labels)
    assert fit.same.sum() == test.same.sum() == 10 * 6
    assert len(pairs(vectors, labels).cosines) == 80 * 79 // 2
    rates = error_rates(MOBILEFACENET_CASIA, test)
    fmr, fnmr = [r[1] for r in rates], [r[2] for r in rates]
    assert fmr == sorted(fmr, reverse=True) and fnmr == sorted(fnmr)
