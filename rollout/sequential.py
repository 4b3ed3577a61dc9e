"""Confidence sequences: intervals that hold at every look at once, so the rollout analysis can
run every half hour on the traffic gathered so far and still roll back an equal canary with
at most the chosen probability, however many times it looks.

The interval around an estimated difference D with (estimated) variance V is Robbins' normal
mixture boundary for a Brownian motion in "information time" 1/V (Robbins 1970; in the
form of Howard et al. 2021 and Waudby-Smith et al. 2021, "time-uniform central limit
theory"): with probability at least 1 - alpha, for every amount of data at once,

    |D - delta| <= sqrt(V (1 + V / s^2) (2 ln(1 / alpha) + ln(1 + s^2 / V)))

where delta is the true difference and s the mixture's scale: the size of effect the interval
is tightest for (we use each test's own margin). By Ville's inequality a process that crosses
this boundary at any look does so with probability at most alpha, so looking after every
request costs nothing more than looking once at the end. The Gaussian limit makes it
asymptotic: the analysis waits for a minimum sample (`min_requests`, `min_labelled`) before it
decides, and `bench.rollout` measures the rate it really achieves.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate and its confidence-sequence bounds at level 1 - alpha."""

    estimate: float
    lower: float
    upper: float
    alpha: float

    def describe(self, digits: int = 4) -> str:
        return (f"{self.estimate:+.{digits}f} [{self.lower:+.{digits}f}, {self.upper:+.{digits}f}]"
                f" at {1 - self.alpha:.2%}")


def half_width(variance: float, alpha: float, scale: float) -> float:
    """The boundary's half-width for an estimate of that variance (see the module)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if variance <= 0:
        return 0.0
    return math.sqrt(variance * (1 + variance / scale ** 2)
                     * (2 * math.log(1 / alpha) + math.log(1 + scale ** 2 / variance)))


def _interval(estimate: float, variance: float, alpha: float, scale: float) -> Interval:
    width = half_width(variance, alpha, scale)
    return Interval(estimate, estimate - width, estimate + width, alpha)


def mean_difference(candidate: np.ndarray, stable: np.ndarray, alpha: float,
                    scale: float) -> Interval:
    """mean(candidate) - mean(stable) from two independent samples (each at least 2 long)."""
    if len(candidate) < 2 or len(stable) < 2:
        raise ValueError("each sample needs at least 2 values")
    return summary_difference(
        (float(np.mean(candidate)), float(np.var(candidate, ddof=1)), len(candidate)),
        (float(np.mean(stable)), float(np.var(stable, ddof=1)), len(stable)), alpha, scale)


def summary_difference(candidate: tuple[float, float, int], stable: tuple[float, float, int],
                       alpha: float, scale: float) -> Interval:
    """The same from each sample's (mean, variance, size), e.g. read off a histogram."""
    (mean_c, var_c, n_c), (mean_s, var_s, n_s) = candidate, stable
    return _interval(mean_c - mean_s, var_c / n_c + var_s / n_s, alpha, scale)


def _smoothed_variance(count: int, total: int) -> float:
    """A proportion's variance with half a success and half a failure added, so that no
    failures in a few hundred trials does not read as certainty."""
    rate = (count + 0.5) / (total + 1)
    return rate * (1 - rate) / total


def proportion_difference(candidate: tuple[int, int], stable: tuple[int, int], alpha: float,
                          scale: float) -> Interval:
    """rate(candidate) - rate(stable); each side as (events, trials), trials > 0."""
    (k_c, n_c), (k_s, n_s) = candidate, stable
    variance = _smoothed_variance(k_c, n_c) + _smoothed_variance(k_s, n_s)
    return _interval(k_c / n_c - k_s / n_s, variance, alpha, scale)


def proportion(events: int, trials: int, alpha: float, scale: float) -> Interval:
    """One rate, events / trials (trials > 0)."""
    return _interval(events / trials, _smoothed_variance(events, trials), alpha, scale)
