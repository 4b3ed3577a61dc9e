"""Drift calibrated to the span's size and to the history's own span-to-span variation.

A fixed distance threshold cannot serve a 200-trip span and a 9-million-trip one: sampling
noise alone moves a small span's distances by more than a real shift moves a large one's, and
real quarters differ from each other by more than noise once spans are large. So each compared
feature gets, per run:

- a **score**: on samples of raw values (the newest span against the earlier spans of the
  window pooled), the Kolmogorov-Smirnov distance for numeric features (the schema's
  `jensen_shannon_divergence` ones), the L-infinity distance between value shares for
  categorical ones (`infinity_norm`), and for every one the change in the share of rows that
  hold a value (presence: a missing column scores its whole share);
- a **test threshold**: the score's critical value at level 0.01 / (number of comparisons)
  for samples of these sizes, n and m, if nothing changed (two-sample KS:
  sqrt(-ln(a/2)/2) sqrt(1/n + 1/m); a share: z(1 - a/2k) x 0.5 sqrt(1/n + 1/m) over k
  categories, the worst case p = 0.5). For small spans this is a statistical test; it shrinks
  as spans grow;
- a **history allowance**: for each of the last `HISTORY_SPANS` earlier spans of the window,
  the same score against the spans before it, minus its own test threshold: how far real
  span-to-span variation went beyond noise (NannyML's idea of thresholds from the reference
  period's own spread). The largest of these, times `HISTORY_MARGIN`, is added.

threshold = test threshold + margin x largest history excess; for large spans this is a
distance threshold set by the history. A feature whose schema comparator carries the
annotation tag `drift_threshold_override` uses the schema's threshold as is (an explicit
override). Every score is recorded, crossed or not (docs/drift.md measures the false-alarm
rate on the real quarters and the detection of clear shifts).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy.stats import norm
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder

from ctpipe.validation.drift import INFINITY_NORM, JENSEN_SHANNON, DriftError

FAMILY_ALPHA = 0.01  # the chance that one run with no change at all flags any comparison
HISTORY_SPANS = 8
HISTORY_MARGIN = 1.5
# No score below this is drift, however large the spans (a share moving by under 20 points,
# CDFs apart by under 0.2): real quarters move that much (docs/drift.md); clear shifts far more.
EFFECT_FLOOR = 0.2
OVERRIDE_TAG = "drift_threshold_override"
VALUES, PRESENCE = "values", "presence"
KOLMOGOROV_SMIRNOV = "kolmogorov_smirnov"


@dataclasses.dataclass
class Sample:
    """One span's (or a pool's) sampled rows: each compared feature's present values."""

    rows: int
    values: dict[str, np.ndarray]

    @staticmethod
    def pooled(samples: Sequence["Sample"]) -> "Sample":
        names = {name for sample in samples for name in sample.values}
        return Sample(sum(s.rows for s in samples), {
            name: np.concatenate([s.values[name] for s in samples if name in s.values])
            for name in names})


@dataclasses.dataclass(frozen=True)
class Finding:
    """One comparison of one feature in one run, crossed or not."""

    feature: str
    measure: str  # VALUES or PRESENCE
    statistic: str  # KOLMOGOROV_SMIRNOV or INFINITY_NORM
    score: float
    threshold: float
    crossed: bool
    test_threshold: float
    history_excess: float
    source: str  # "test", "history" or "override": what set the threshold
    rows: tuple[int, int]  # sampled rows: newest span, reference

    @property
    def label(self) -> str:
        """`feature`, or `feature/presence` for the presence measure."""
        return self.feature + ("/presence" if self.measure == PRESENCE else "")

    def describe(self) -> str:
        relation = ">" if self.crossed else "<="
        measure = " presence" if self.measure == PRESENCE else ""
        return (f"drift: feature '{self.feature}'{measure} {self.statistic} {self.score:.3f} "
                f"{relation} threshold {self.threshold:.3f} ({self.source}; "
                f"{self.rows[0]:,} vs {self.rows[1]:,} rows)")


def compared_features(schema: schema_pb2.Schema) -> dict[str, tuple[str, float | None]]:
    """Feature -> (kind: INFINITY_NORM for categorical, JENSEN_SHANNON for numeric, the
    schema's threshold when tagged as an override, else None), from the drift comparators."""
    compared = {}
    for feature in schema.feature:
        if not feature.HasField("drift_comparator"):
            continue
        comparator = feature.drift_comparator
        kind = next((name for name in (INFINITY_NORM, JENSEN_SHANNON)
                     if comparator.HasField(name)), None)
        if kind is None:
            raise DriftError(f"feature '{feature.name}': drift_comparator needs {INFINITY_NORM}"
                             f" or {JENSEN_SHANNON}")
        tags = set(feature.annotation.tag)
        override = getattr(comparator, kind).threshold if OVERRIDE_TAG in tags else None
        if override is not None and override <= 0:
            raise DriftError(f"feature '{feature.name}': {OVERRIDE_TAG} needs a threshold > 0")
        compared[feature.name] = (kind, override)
    if not compared:
        raise DriftError("the schema sets no drift_comparator: nothing to compare")
    return compared


def sample_of(records: Sequence[bytes], kinds: dict[str, str]) -> Sample:
    """The compared features' present values of serialized tf.Examples (numbers as floats,
    categorical values as strings; a row's first value)."""
    if not records:
        return Sample(0, {})
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(records))
    values = {}
    for name, kind in kinds.items():
        index = batch.schema.get_field_index(name)
        if index < 0:
            continue  # the column is missing from every row
        column = batch.column(index).to_pylist()
        present = [row[0] for row in column if row]
        if kind == JENSEN_SHANNON:
            values[name] = np.array([float(v) for v in present], dtype=np.float64)
        else:
            values[name] = np.array([v.decode() if isinstance(v, bytes) else str(v)
                                     for v in present], dtype=object)
    return Sample(len(records), values)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov distance: the largest gap between the two CDFs."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gap = (np.searchsorted(a, points, side="right") / len(a)
           - np.searchsorted(b, points, side="right") / len(b))
    return float(np.abs(gap).max())


def share_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """L-infinity between the value shares of two samples, and the number of categories."""
    categories, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    counts_a = np.bincount(inverse[:len(a)], minlength=len(categories)) / len(a)
    counts_b = np.bincount(inverse[len(a):], minlength=len(categories)) / len(b)
    return float(np.abs(counts_a - counts_b).max()), len(categories)


def critical_value(statistic: str, n: int, m: int, alpha: float, categories: int = 2) -> float:
    """The score's critical value at level `alpha` for samples of n and m rows."""
    spread = math.sqrt(1 / n + 1 / m)
    if statistic == KOLMOGOROV_SMIRNOV:
        return math.sqrt(-math.log(alpha / 2) / 2) * spread
    # A share differs by more than z sd with probability alpha/k per category (p = 0.5 worst).
    return float(norm.ppf(1 - alpha / (2 * max(categories - 1, 1)))) * 0.5 * spread


def _scores(name: str, kind: str, new: Sample, reference: Sample, alpha: float
            ) -> list[tuple[str, str, float, float]]:
    """[(measure, statistic, score, critical value)] of one feature."""
    result = []
    if not new.rows or not reference.rows:
        return result
    new_values = new.values.get(name, np.array([]))
    old_values = reference.values.get(name, np.array([]))
    share_new, share_old = len(new_values) / new.rows, len(old_values) / reference.rows
    result.append((PRESENCE, INFINITY_NORM, abs(share_new - share_old),
                   critical_value(INFINITY_NORM, new.rows, reference.rows, alpha)))
    if len(new_values) and len(old_values):
        if kind == JENSEN_SHANNON:
            result.append((VALUES, KOLMOGOROV_SMIRNOV, ks_distance(new_values, old_values),
                           critical_value(KOLMOGOROV_SMIRNOV, len(new_values), len(old_values),
                                          alpha)))
        else:
            distance, categories = share_distance(new_values, old_values)
            result.append((VALUES, INFINITY_NORM, distance,
                           critical_value(INFINITY_NORM, len(new_values), len(old_values),
                                          alpha, categories)))
    return result


def calibrated_findings(window: Sequence[Sample], schema: schema_pb2.Schema) -> list[Finding]:
    """The newest sample (last) against the others pooled, each threshold calibrated as the
    module says; `window` is in span order, at least two spans."""
    if len(window) < 2:
        raise DriftError("drift needs the newest span and at least one earlier span")
    features = compared_features(schema)
    alpha = FAMILY_ALPHA / (2 * len(features))
    newest, earlier = window[-1], list(window[:-1])
    reference = Sample.pooled(earlier)
    # The history's own spread: each recent earlier span against the other earlier spans.
    excess: dict[tuple[str, str], float] = {}
    if len(earlier) >= 2:
        for position in range(max(0, len(earlier) - HISTORY_SPANS), len(earlier)):
            others = Sample.pooled(earlier[:position] + earlier[position + 1:])
            for name, (kind, _) in features.items():
                for measure, _, score, critical in _scores(name, kind, earlier[position],
                                                           others, alpha):
                    key = (name, measure)
                    excess[key] = max(excess.get(key, 0.0),
                                      score - max(critical, EFFECT_FLOOR))
    findings = []
    for name, (kind, override) in features.items():
        for measure, statistic, score, critical in _scores(name, kind, newest, reference,
                                                           alpha):
            history = max(excess.get((name, measure), 0.0), 0.0)
            if override is not None:
                threshold, source = override, "override"
            else:
                threshold = max(critical, EFFECT_FLOOR) + HISTORY_MARGIN * history
                source = "history" if history > 0 else "test"
            findings.append(Finding(name, measure, statistic, score, threshold,
                                    score > threshold, critical, history, source,
                                    (newest.rows, reference.rows)))
    return findings
