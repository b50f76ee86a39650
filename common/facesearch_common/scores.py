"""How a cosine becomes a score: the probability that an answer is right.

A model's cosines are described by two fitted normal distributions: the
genuine one (probe and face of one person) and the impostor one (of two
persons), the impostor one fitted in its upper tail, where a search's best
impostors fall (bench/calibrate.py fits both on labelled lfw-dev pairs).
Their density ratio LR(c) = g(c) / f(c) is the evidence a cosine carries.

A search compares the probe with every one of the N faces searched and
answers with the best. Under the prior that the probe is as likely to be a
stranger as an enrolled person (STRANGER_ODDS = 1), the best answer at
cosine c is right with probability

    LR(c) / (LR(c) + STRANGER_ODDS * N + (N - 1) * G(c) / F(c))

where F and G are the impostor and genuine CDFs. The three terms are the
densities of the three ways a top answer at c happens: the enrolled
person's own face on top of N - 1 impostors; any of a stranger's N
impostors on top; and, for an enrolled person, one of the N - 1 impostors
on top of the person's own face, which scored below c. The common factor
F(c)^(N-1) cancels. At N = 1 the score is LR / (LR + 1): the pairwise
probability of a 1:1 comparison. For a fixed cosine it falls as N grows:
the best of many impostors is higher than one impostor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

# Odds that a probe is a stranger rather than an enrolled person: 1 is the
# prior of one half, the one every documented score assumes.
STRANGER_ODDS = 1.0
_CLIP = 700.0  # keeps exp() in floating point range


@dataclass(frozen=True)
class Calibration:
    genuine_mean: float
    genuine_sd: float
    # Fitted on the impostor tail (its top 10% down to 1e-5), not its bulk:
    # the tail is heavier than a normal fitted to all impostor pairs.
    impostor_mean: float
    impostor_sd: float

    def log_likelihood_ratio(self, cosine: float) -> float:
        """log g(c) / f(c), non-decreasing in c on [-1, 1]."""
        return self._llr(self._held(cosine))

    def score(self, cosine: float, faces: int = 1) -> float:
        """P(the best answer over `faces` faces searched is right | its cosine)."""
        faces = max(faces, 1)
        c = self._held(cosine)
        llr = min(max(self._llr(c), -_CLIP), _CLIP)
        against = STRANGER_ODDS * faces
        if faces > 1:
            against += (faces - 1) * self._genuine_below_over_impostor_below(c)
        # LR / (LR + against), written so that neither term overflows.
        return 1.0 / (1.0 + math.exp(min(math.log(against) - llr, _CLIP)))

    @property
    def weak_cosine(self) -> float:
        """Below this a best match is weak: one sd under the genuine mean,
        where a sixth of genuine pairs fall. FAST looks again below it
        (gateway/shards.py)."""
        return self.genuine_mean - self.genuine_sd

    def cosine(self, score: float) -> float:
        """The lowest cosine with a pairwise (N = 1) score of at least `score`.

        A search's score is never above the pairwise one, so this is the
        index's threshold for a search's `min_score`: nothing it leaves out
        could have passed."""
        return _pairwise_cosine(self, score)

    def _llr(self, c: float) -> float:
        genuine = (c - self.genuine_mean) / self.genuine_sd
        impostor = (c - self.impostor_mean) / self.impostor_sd
        return 0.5 * (impostor * impostor - genuine * genuine) + math.log(self.impostor_sd / self.genuine_sd)

    def _genuine_below_over_impostor_below(self, c: float) -> float:
        genuine_below = NormalDist(self.genuine_mean, self.genuine_sd).cdf(c)
        return genuine_below / max(NormalDist(self.impostor_mean, self.impostor_sd).cdf(c), 1e-300)

    def _held(self, cosine: float) -> float:
        low, high = _rising_span(self)
        return min(max(cosine, low), high)


@lru_cache(maxsize=64)
def _rising_span(calibration: Calibration) -> tuple[float, float]:
    """The cosines around the genuine mean where every N's score rises.

    Two normals give a quadratic log ratio, which can turn down inside
    [-1, 1] when a fit has unusual spreads, and the G/F term rises with c.
    The log-odds' slope at N faces, llr' - (N-1)(G/F)' / (odds N + (N-1) G/F),
    is at least h = llr' - (G/F)' / (odds + G/F) for every N, so where h >= 0
    every score rises; outside that span scores are held at its ends, so a
    higher cosine never scores lower. For the fitted models the span is the
    whole of [-1, 1]."""
    grid = [i / 1000 - 1 for i in range(2001)]
    step = 1e-4

    def rising(c: float) -> bool:
        slope = (c - calibration.impostor_mean) / calibration.impostor_sd**2 - (
            c - calibration.genuine_mean
        ) / calibration.genuine_sd**2
        ratio = calibration._genuine_below_over_impostor_below
        change = (ratio(c + step) - ratio(c - step)) / (2 * step)
        return slope >= change / (STRANGER_ODDS + ratio(c))

    middle = min(max(round((calibration.genuine_mean + 1) * 1000), 0), 2000)
    low = high = middle
    while low > 0 and rising(grid[low - 1]):
        low -= 1
    while high < 2000 and rising(grid[high + 1]):
        high += 1
    return grid[low], grid[high]


# For a model not fitted yet: pairwise score 0.5 at cosine 0.4, 0.9 at 0.48.
UNCALIBRATED = Calibration(0.7, 0.15, 0.1, 0.15)


@lru_cache(maxsize=1024)  # a min_score is mapped on every search
def _pairwise_cosine(calibration: Calibration, score: float) -> float:
    low, high = -1.0, 1.0
    if calibration.score(low) >= score:
        return low
    for _ in range(50):  # bisection: 2^-50 of the range
        mid = (low + high) / 2
        if calibration.score(mid) >= score:
            high = mid
        else:
            low = mid
    return high
