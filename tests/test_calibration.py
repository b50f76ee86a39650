"""The calibration fit (cli/facesearch_cli/calibration.py, which `facesearch
calibrate` and bench/calibrate.py run) on cosines with a known law, and its
held-out report."""

import numpy as np

from bench import open_set
from facesearch_cli import calibration as fitting
from facesearch_cli.calibration import IMPOSTOR_QUANTILES, Pairs, error_rates, fit, fit_normal, pairs
from facesearch_common.specs import MOBILEFACENET_CASIA


def test_the_fit_recovers_known_normals_in_the_range_it_fits():
    rng = np.random.default_rng(0)
    assert np.allclose(fit_normal(rng.normal(0.6, 0.15, 200_000), np.linspace(0.1, 0.9, 17)), (0.6, 0.15), atol=0.003)
    # A heavier-tailed impostor law: the tail fit follows the tail, not the bulk.
    impostors = np.concatenate([rng.normal(0.0, 0.1, 900_000), rng.normal(0.0, 0.2, 100_000)])
    mean, sd = fit_normal(impostors, IMPOSTOR_QUANTILES)
    assert sd > 0.15
    assert abs(np.quantile(impostors, 0.9999) - (mean + 3.719 * sd)) < 0.02


def test_a_fit_scores_its_own_pairs_and_rates_move_the_right_way():
    rng = np.random.default_rng(1)
    same = rng.random(400_000) < 0.01
    cosines = np.where(same, rng.normal(0.6, 0.15, same.size), rng.normal(0.0, 0.12, same.size))
    calibration = fit(Pairs(cosines, same))
    assert abs(calibration.genuine_mean - 0.6) < 0.01 and abs(calibration.impostor_sd - 0.12) < 0.01
    rates = error_rates(calibration, Pairs(cosines, same))
    fmr, fnmr = [r[1] for r in rates], [r[2] for r in rates]
    assert fmr == sorted(fmr, reverse=True) and fnmr == sorted(fnmr)


def test_pairs_are_every_unordered_pair():
    labels = np.repeat(np.arange(20), 4)
    vectors = np.random.default_rng(2).standard_normal((80, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = pairs(vectors, labels)
    assert len(found.cosines) == 80 * 79 // 2 and found.same.sum() == 20 * 6


def test_open_set_tables_count_what_they_say():
    outcomes = open_set.Outcomes(
        faces=100,
        scores=np.array([0.95, 0.85, 0.6, 0.0, 0.92, 0.4]),
        right=np.array([True, True, False, False, False, False]),
        stranger=np.array([False, False, False, True, True, True]),
    )
    (_, strangers, found, precision), *_, (_, strangers9, found9, precision9) = open_set.acceptance(outcomes)
    assert (strangers, found, precision) == (1 / 3, 2 / 3, 0.5)  # at 0.5: 4 accepted, 2 right
    assert (strangers9, found9, precision9) == (1 / 3, 1 / 3, 0.5)
    bins = {(low, high): (n, right) for low, high, n, _, right in open_set.reliability(outcomes)}
    assert bins[(0.9, 0.95)] == (1, 0.0) and bins[(0.95, 0.99)] == (1, 1.0)
    assert sum(n for n, _ in bins.values()) == 5  # no answer is no bin
    assert open_set.meets_targets({"100": outcomes}) == [
        "100 faces: precision 0.667 at min_score 0.7",
        "100 faces: precision 0.667 at min_score 0.8",
        "100 faces: precision 0.500 at min_score 0.9",
        "100 faces: 33.3% of strangers accepted at 0.9",
    ]
    assert MOBILEFACENET_CASIA.calibration.genuine_mean > MOBILEFACENET_CASIA.calibration.impostor_mean


def test_too_little_data_says_how_much_is_needed():
    assert fitting.too_little(40, 20) is None
    why = fitting.too_little(12, 5)
    assert why is not None and "at least 40 persons, 20 of them with two or more" in why and "has 12 persons" in why


def test_the_held_out_report_finds_the_enrolled_and_refuses_strangers():
    """Persons whose faces cluster tightly: every enrolled probe is found,
    at a high score; strangers score low against a gallery that does not
    hold them."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((60, 64))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(60), 4)

    def noisy(scale: float) -> np.ndarray:
        v = centres[labels] + scale * rng.standard_normal((len(labels), 64)) / 8
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    faces = fitting.Faces(noisy(0.5), noisy(0.5), labels)
    fit_half, held_out = fitting.split(faces)
    calibration = fitting.fit(fitting.fitting_pairs(fit_half))
    runs = fitting.one_to_n(held_out, fit_half.enrolled, calibration, (20, 100, 10_000))
    assert sorted(runs) == [20, 100, 135]  # 15 enrolled + 120 distractors at most
    found, strangers, precision = runs[100].at(0.5)
    assert found > 0.95 and strangers < 0.05 and precision > 0.95
    assert sum(n for _, n, _, _ in runs[135].reliability()) >= 40
