"""The rollout statistics on known numbers: distances, AUC and histogram quantiles."""
from __future__ import annotations

import numpy as np
import pytest

from ctpipe.rollout import statistics


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
