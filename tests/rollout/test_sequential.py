"""Confidence sequences: equal sides looked at again and again are told apart no more often
than alpha, unlike fixed-sample intervals."""
from __future__ import annotations

import numpy as np

from ctpipe.rollout import sequential


def test_confidence_sequences_hold_at_every_look():
    """Equal sides looked at after every 100 trips up to 20,000: the interval leaves 0 in at
    most alpha of the runs (seeded: the same 400 runs every time)."""
    rng = np.random.default_rng(7)
    alpha, crossed, fixed_crossed = 0.05, 0, 0
    for _ in range(400):
        fixed_ever = False
        a, b = rng.gamma(0.3, 0.7, 20000), rng.gamma(0.3, 0.7, 20000)
        sums = [np.cumsum(x) for x in (a, b)]
        squares = [np.cumsum(x ** 2) for x in (a, b)]
        looks = range(100, 20001, 100)
        ever = False
        for n in looks:
            side = [(s[n - 1] / n, (q[n - 1] - s[n - 1] ** 2 / n) / (n - 1), n)
                    for s, q in zip(sums, squares)]
            interval = sequential.summary_difference(side[0], side[1], alpha, 0.05)
            ever = ever or not interval.lower <= 0 <= interval.upper
            error = np.sqrt(side[0][1] / n + side[1][1] / n)
            fixed_ever = fixed_ever or abs(side[0][0] - side[1][0]) > 1.96 * error
        crossed += ever
        fixed_crossed += fixed_ever
    assert crossed / 400 <= alpha
    # A fixed-sample 95 % interval looked at as often is wrong in many more runs.
    assert fixed_crossed / 400 > 4 * alpha
