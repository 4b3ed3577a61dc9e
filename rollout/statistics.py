"""The statistics of the rollout analysis, on plain arrays: how far two prediction
distributions lie apart, the AUC and its sampling error, each trip's log loss, and what a
Prometheus histogram tells of its values (a quantile; mean and variance from its buckets).

The intervals the verdict tests on are confidence sequences (`ctpipe.rollout.sequential`).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

# Probabilities are clipped this far from 0 and 1 before their log loss is taken.
LOSS_CLIP = 1e-4
_GRID = np.linspace(0, 1, 201)


def sample_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 between two samples on [0, 1]: the area between their CDFs."""
    cdf_a = np.searchsorted(np.sort(a), _GRID, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), _GRID, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).mean())


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 between two histograms over the same buckets of [0, 1]."""
    cdf_a, cdf_b = np.cumsum(a) / a.sum(), np.cumsum(b) / b.sum()
    return float(np.abs(cdf_a - cdf_b).sum() / len(a))


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    positives = labels == 1
    count_pos, count_neg = int(positives.sum()), int((~positives).sum())
    if not count_pos or not count_neg:
        return None

    ranks = rankdata(scores)
    return float((ranks[positives].sum() - count_pos * (count_pos + 1) / 2)
                 / (count_pos * count_neg))


def auc_standard_error(area: float, positives: int, negatives: int) -> float:
    """The sampling error of an AUC measured on `positives` and `negatives` (Hanley and
    McNeil, 1982): a few hundred labelled trips leave several points of AUC to chance."""
    q1, q2 = area / (2 - area), 2 * area ** 2 / (1 + area)
    variance = (area * (1 - area) + (positives - 1) * (q1 - area ** 2)
                + (negatives - 1) * (q2 - area ** 2)) / (positives * negatives)
    return float(np.sqrt(max(variance, 0.0)))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each trip's log loss (nats), probabilities clipped to [LOSS_CLIP, 1 - LOSS_CLIP]."""
    clipped = np.clip(probabilities, LOSS_CLIP, 1 - LOSS_CLIP)
    return -(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))


def histogram_quantile(bounds: np.ndarray, cumulative: np.ndarray, q: float) -> float | None:
    """A quantile by linear interpolation within histogram buckets (as Prometheus does)."""
    if not len(cumulative) or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    index = int(np.searchsorted(cumulative, rank))
    if index >= len(bounds) - 1:  # the +Inf bucket: the highest finite bound
        return float(bounds[-2]) if len(bounds) > 1 else None
    lower = 0.0 if index == 0 else bounds[index - 1]
    below = 0.0 if index == 0 else cumulative[index - 1]
    inside = cumulative[index] - below
    return float(lower + (bounds[index] - lower) * ((rank - below) / inside if inside else 1))


def histogram_summary(counts: np.ndarray) -> tuple[float, float, int]:
    """(mean, variance, size) of probabilities known only by their 0.05-wide buckets: each
    at its bucket's middle (off by at most 0.025, well inside `max_prediction_shift`)."""
    middles = (np.arange(len(counts)) + 0.5) / len(counts)
    total = float(counts.sum())
    mean = float((counts * middles).sum() / total)
    return mean, float((counts * (middles - mean) ** 2).sum() / max(total - 1, 1)), int(total)
