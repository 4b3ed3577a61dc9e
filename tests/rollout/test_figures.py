"""The rollout analysis' figures and verdict rules on known numbers."""
from __future__ import annotations

import numpy as np
import pytest

from ctpipe.common.errors import UserError
from ctpipe.rollout import sequential, statistics
from ctpipe.rollout.figures import VersionFigures
from ctpipe.rollout.labels import BY_REQUEST_ID, Labels
from ctpipe.rollout.thresholds import Thresholds
from ctpipe.rollout.verdict import judge


def test_distances_measure_how_far_probability_mass_moved():
    rng = np.random.default_rng(0)
    a = rng.beta(2, 5, 5000)
    assert statistics.sample_distance(a, rng.beta(2, 5, 5000)) < 0.02
    assert statistics.sample_distance(a, np.minimum(a + 0.3, 1)) == pytest.approx(0.3, abs=0.02)
    bins = np.linspace(0, 1, 21)
    counts = np.histogram(a, bins)[0].astype(float)
    shifted = np.histogram(np.minimum(a + 0.3, 1), bins)[0].astype(float)
    assert statistics.histogram_distance(counts, shifted) == pytest.approx(0.3, abs=0.05)


def test_auc_and_histogram_quantiles():
    assert statistics.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert statistics.auc(np.array([1, 1]), np.array([0.1, 0.2])) is None
    bounds = np.array([0.001, 0.002, 0.004, np.inf])
    cumulative = np.array([50.0, 90.0, 100.0, 100.0])
    assert statistics.histogram_quantile(bounds, cumulative, 0.5) == pytest.approx(0.001)
    assert statistics.histogram_quantile(bounds, cumulative, 0.95) == pytest.approx(0.003)


_BOUNDS = np.array([0.00025 * 2 ** i for i in range(17)] + [np.inf])


def _figures(role: str, requests: int, errors: int, latency: float, shift: float = 0.0):
    """Figures of `requests` answers taking about `latency` s each (a histogram as the
    gateway's), `errors` of them failed, and 2,000 logged probabilities."""
    rng = np.random.default_rng(1 if role == "stable" else 2)
    seconds = latency * rng.uniform(0.5, 1.0, requests)
    cumulative = np.array([(seconds <= bound).sum() for bound in _BOUNDS], dtype=float)
    figures = VersionFigures(role, 1 if role == "stable" else 2, requests, errors,
                             statistics.histogram_quantile(_BOUNDS, cumulative, 0.99),
                             probabilities=np.clip(rng.beta(2, 5, 2000) + shift, 0, 1))
    figures.latency = (_BOUNDS, cumulative)
    return figures


@pytest.mark.parametrize("candidate, verdict, reason", [
    (_figures("canary", 50, 0, 0.004), "wait", "fewer than 200 requests"),
    (_figures("canary", 500, 0, 0.004), "promote", "no test finds it worse"),
    (_figures("canary", 2000, 80, 0.004), "rollback", "error rate 4.00%"),
    (_figures("canary", 500, 0, 0.020), "rollback", "requests slower than 16.0 ms"),
    (_figures("canary", 500, 0, 0.004, shift=0.1), "rollback", "mean probability moved"),
])
def test_verdicts(candidate, verdict, reason):
    result = judge(_figures("stable", 5000, 10, 0.005), candidate, Thresholds())
    assert result.recommendation == verdict
    assert reason in "; ".join(result.reasons)


def test_a_few_more_errors_in_few_requests_are_no_rollback():
    """4 % against 0.2 % on 500 requests is not yet beyond +1 point at the 1 % level for
    every look; on 2,000 it is (test_verdicts)."""
    result = judge(_figures("stable", 5000, 10, 0.005),
                   _figures("canary", 500, 20, 0.004), Thresholds())
    assert result.recommendation == "promote", result.reasons
    assert result.tests["errors"].lower < 0.01 < result.tests["errors"].estimate + 0.01


def _labelled(role: str, trips: int, extra_loss: float, seed: int) -> VersionFigures:
    """A side whose labelled trips' log losses are those of a model with AUC about 0.95
    (mean 0.20 nats, long right tail), plus `extra_loss`."""
    rng = np.random.default_rng(seed)
    figures = _figures(role, 5000, 0, 0.004)
    figures.losses = rng.gamma(0.3, 0.2 / 0.3, trips) + extra_loss
    return figures


@pytest.mark.parametrize("trips, extra, verdict, reason", [
    (150, 0.0, "wait", "150 and 150 labelled trips (stable, canary): waiting for 200 each"),
    (400, 0.0, "wait", "not yet shown below +0.05"),
    (20000, 0.0, "promote", "no test finds it worse"),
    (20000, 0.03, "rollback", "log loss higher than stable's"),
])
def test_the_loss_test_waits_until_labels_show_the_canary_is_not_worse(trips, extra, verdict,
                                                                        reason):
    result = judge(_labelled("stable", trips, 0.0, 3), _labelled("canary", trips, extra, 4),
                   Thresholds(), Labels(BY_REQUEST_ID, {}))
    assert result.recommendation == verdict
    assert reason in "; ".join(result.reasons)


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


def test_thresholds_are_checked():
    with pytest.raises(UserError, match="--false-rollback-rate must be within"):
        Thresholds(false_rollback_rate=0)
    with pytest.raises(UserError, match="--max-loss-increase must be positive"):
        Thresholds(max_loss_increase=0)
