"""The rollout analysis' figures and verdict rules on known numbers."""
from __future__ import annotations

import numpy as np
import pytest

from serving.rollout import analysis
from serving.rollout.analysis import VersionFigures
from serving.rollout.thresholds import Thresholds


def test_distances_measure_how_far_probability_mass_moved():
    rng = np.random.default_rng(0)
    a = rng.beta(2, 5, 5000)
    assert analysis.sample_distance(a, rng.beta(2, 5, 5000)) < 0.02
    assert analysis.sample_distance(a, np.minimum(a + 0.3, 1)) == pytest.approx(0.3, abs=0.02)
    bins = np.linspace(0, 1, 21)
    counts = np.histogram(a, bins)[0].astype(float)
    shifted = np.histogram(np.minimum(a + 0.3, 1), bins)[0].astype(float)
    assert analysis.histogram_distance(counts, shifted) == pytest.approx(0.3, abs=0.05)


def test_auc_and_histogram_quantiles():
    assert analysis.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert analysis.auc(np.array([1, 1]), np.array([0.1, 0.2])) is None
    bounds = np.array([0.001, 0.002, 0.004, np.inf])
    cumulative = np.array([50.0, 90.0, 100.0, 100.0])
    assert analysis._quantile(bounds, cumulative, 0.5) == pytest.approx(0.001)
    assert analysis._quantile(bounds, cumulative, 0.95) == pytest.approx(0.003)


def _figures(role: str, requests: int, errors: int, p99: float, shift: float = 0.0):
    rng = np.random.default_rng(1 if role == "stable" else 2)
    return VersionFigures(role, 1 if role == "stable" else 2, requests, errors, p99,
                          np.clip(rng.beta(2, 5, 2000) + shift, 0, 1))


@pytest.mark.parametrize("candidate, verdict, reason", [
    (_figures("canary", 50, 0, 0.004), "wait", "fewer than 200 requests"),
    (_figures("canary", 500, 0, 0.004), "promote", "every figure within"),
    (_figures("canary", 500, 20, 0.004), "rollback", "error rate 4.00%"),
    (_figures("canary", 500, 0, 0.020), "rollback", "p99 latency 20.0 ms"),
    (_figures("canary", 500, 0, 0.004, shift=0.1), "rollback", "prediction distribution"),
])
def test_verdicts(candidate, verdict, reason):
    result = analysis.judge(_figures("stable", 5000, 10, 0.005), candidate, Thresholds())
    assert result.recommendation == verdict
    assert reason in "; ".join(result.reasons)


def test_an_auc_difference_within_sampling_noise_is_not_a_rollback():
    """The same model answers other trips on each side: with 200 labelled trips each, a few
    points of AUC are chance; with 20,000 the same gap is real."""
    area = 0.70
    small = analysis.auc_standard_error(area, 40, 160)
    assert 0.03 < small < 0.06
    assert analysis.auc_standard_error(area, 4000, 16000) < small / 5

    def judged(labelled: int, positives: int, candidate_auc: float):
        stable = _figures("stable", 5000, 10, 0.005)
        candidate = _figures("canary", 5000, 10, 0.005)
        for figures, area_seen in ((stable, 0.7118), (candidate, candidate_auc)):
            figures.auc, figures.labelled = area_seen, labelled
            figures.auc_standard_error = analysis.auc_standard_error(
                area_seen, positives, labelled - positives)
        candidate.probabilities = stable.probabilities
        return analysis.judge(stable, candidate, Thresholds(min_labelled=100))

    assert judged(200, 40, 0.6779).recommendation == "promote"
    verdict = judged(20000, 4000, 0.6779)
    assert verdict.recommendation == "rollback"
    assert "AUC 0.6779 vs stable's 0.7118 (allowed -0.0200" in verdict.reasons[0]
    assert judged(200, 40, 0.45).recommendation == "rollback", "a real fall still shows"
