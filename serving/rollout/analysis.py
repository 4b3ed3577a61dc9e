"""The figures and the verdict of `ctpipe rollout analyze` (see the package's docstring)."""
from __future__ import annotations

import csv
import dataclasses
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from models import features
from serving.client import protos, version_labels
from serving.client.examples import row_to_example
from serving.client.version_labels import CANARY, SHADOW, STABLE, LabelChange
from serving.prediction_log import read_logs
from serving.rollout.thresholds import PROMOTE, ROLLBACK, WAIT, Thresholds
from serving.server.metrics import PREDICTION_PROBABILITY

P99_SLACK_SECONDS = 0.002
_GRID = np.linspace(0, 1, 201)


@dataclasses.dataclass
class VersionFigures:
    """One version's figures; None where the sources given cannot tell."""

    role: str
    version: int
    requests: int = 0
    errors: int | None = None
    p99_seconds: float | None = None
    probabilities: np.ndarray | None = None  # from the logs
    histogram: np.ndarray | None = None  # from the metrics: counts per 0.05 bucket
    auc: float | None = None
    auc_standard_error: float | None = None
    labelled: int = 0

    @property
    def error_rate(self) -> float | None:
        return None if self.errors is None or not self.requests else self.errors / self.requests

    def describe(self) -> str:
        parts = [f"{self.role} (version {self.version}): {self.requests} requests"]
        if self.error_rate is not None:
            parts.append(f"error rate {self.error_rate:.2%}")
        if self.p99_seconds is not None:
            parts.append(f"p99 {self.p99_seconds * 1e3:.1f} ms")
        values = self.probabilities
        if values is not None and len(values):
            parts.append(f"mean probability {values.mean():.3f}")
        if self.auc is not None:
            parts.append(f"AUC {self.auc:.4f} on {self.labelled} labelled trips")
        return ", ".join(parts)


@dataclasses.dataclass
class Verdict:
    recommendation: str
    reasons: list[str]
    stable: VersionFigures
    candidate: VersionFigures
    distance: float | None

    def to_json(self) -> dict[str, Any]:
        def figures(v: VersionFigures) -> dict[str, Any]:
            return {"role": v.role, "version": v.version, "requests": v.requests,
                    "error_rate": v.error_rate, "p99_ms": None if v.p99_seconds is None
                    else v.p99_seconds * 1e3, "auc": v.auc,
                    "auc_standard_error": v.auc_standard_error, "labelled": v.labelled,
                    "mean_probability": None if v.probabilities is None or not len(
                        v.probabilities) else float(v.probabilities.mean())}
        return {"recommendation": self.recommendation, "reasons": self.reasons,
                "prediction_distance": self.distance, "stable": figures(self.stable),
                "candidate": figures(self.candidate)}


# ---- distances and AUC -------------------------------------------------------------------
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
    from scipy.stats import rankdata

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


# ---- the prediction log ------------------------------------------------------------------
def _trip_key(example: Any) -> tuple:
    """A trip's model features and values: the join key between a logged request and a
    labelled row (both go through a tf.Example, so floats are rounded alike)."""
    entries = example.features.feature
    key = []
    for name in features.FEATURE_NAMES:
        feature = entries[name] if name in entries else None
        kind = feature.WhichOneof("kind") if feature is not None else None
        key.append((name, tuple(getattr(feature, kind).value) if kind else ()))
    return tuple(key)


def read_labels(path: Path) -> dict[tuple, int]:
    """Labelled trips (CSV with the taxi columns and `big_tipper`, or `tips` and `fare`)."""
    labels = {}
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row.get(features.LABEL, "") != "":
                label = int(float(row[features.LABEL]))
            elif row.get(features.TIPS, "") != "" and row.get(features.FARE, "") != "":
                label = features.is_big_tipper(float(row[features.TIPS]),
                                               float(row[features.FARE]))
            else:
                continue
            example = protos.Example.FromString(row_to_example(row, f"{path} row {number}"))
            labels[_trip_key(example)] = label
    return labels


def figures_from_logs(prefix: str, model: str, versions: dict[int, VersionFigures],
                      since: float | None, labels: dict[tuple, int] | None) -> None:
    """Adds the logged answers of `versions` (records newer than `since`) to their figures."""
    scores: dict[int, list[float]] = {v: [] for v in versions}
    joined: dict[int, tuple[list[int], list[float]]] = {v: ([], []) for v in versions}
    for record in read_logs(prefix):
        spec = record.log_metadata.model_spec
        version = spec.version.value
        if spec.name != model or version not in versions or not record.HasField("predict_log"):
            continue
        if since is not None and record.log_metadata.timestamp_secs < since:
            continue
        answered = list(record.predict_log.response.outputs[features.PREDICTION_KEY].float_val)
        versions[version].requests += 1
        scores[version].extend(answered)
        if labels:
            sent = record.predict_log.request.inputs[features.EXAMPLES_KEY].string_val
            for data, score in zip(sent, answered):
                label = labels.get(_trip_key(protos.Example.FromString(data)))
                if label is not None:
                    joined[version][0].append(label)
                    joined[version][1].append(score)
    for version, figures in versions.items():
        figures.probabilities = np.array(scores[version], dtype=np.float64)
        truth, predicted = joined[version]
        figures.labelled = len(truth)
        figures.auc = auc(np.array(truth), np.array(predicted)) if truth else None
        if figures.auc is not None:
            positives = int(np.sum(np.array(truth) == 1))
            figures.auc_standard_error = auc_standard_error(figures.auc, positives,
                                                            len(truth) - positives)


# ---- the gateway's metrics ---------------------------------------------------------------
def _endpoints(url: str) -> list[str]:
    """The URL once per address its host resolves to (a headless Service: every pod)."""
    parts = urllib.parse.urlsplit(url)
    addresses = sorted({info[4][0] for info in socket.getaddrinfo(
        parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)})
    netloc = lambda address: (f"[{address}]" if ":" in address else address) + (
        f":{parts.port}" if parts.port else "")
    return [urllib.parse.urlunsplit(parts._replace(netloc=netloc(a))) for a in addresses]


def scrape(urls: Iterable[str], model: str) -> dict[str, dict[tuple, float]]:
    """Sums of the gateway's samples over every endpoint: {sample name: {labels: value}}."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, dict[tuple, float]] = {}
    for url in urls:
        for endpoint in _endpoints(url):
            with urllib.request.urlopen(endpoint, timeout=10) as answer:
                text = answer.read().decode()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.labels.get("model_name") != model:
                        continue
                    key = tuple(sorted((k, v) for k, v in sample.labels.items()
                                       if k != "model_name"))
                    by_labels = totals.setdefault(sample.name, {})
                    by_labels[key] = by_labels.get(key, 0.0) + sample.value
    return totals


def _delta(after: dict, before: dict) -> dict[str, dict[tuple, float]]:
    return {name: {key: value - before.get(name, {}).get(key, 0.0)
                   for key, value in samples.items()} for name, samples in after.items()}


def _buckets(samples: dict[tuple, float], version: int) -> tuple[np.ndarray, np.ndarray]:
    """(upper bounds, cumulative counts) of one version's histogram, summed over routes."""
    counts: dict[float, float] = {}
    for key, value in samples.items():
        labels = dict(key)
        if labels.get("model_version") == str(version):
            bound = float(labels["le"])
            counts[bound] = counts.get(bound, 0.0) + value
    bounds = np.array(sorted(counts))
    return bounds, np.array([counts[b] for b in bounds])


def _quantile(bounds: np.ndarray, cumulative: np.ndarray, q: float) -> float | None:
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


def figures_from_metrics(samples: dict[str, dict[tuple, float]],
                         versions: dict[int, VersionFigures]) -> None:
    requests = samples.get("ctpipe_gateway_requests_total", {})
    for version, figures in versions.items():
        answered = [(dict(key), value) for key, value in requests.items()
                    if dict(key).get("model_version") == str(version)]
        figures.requests = int(sum(value for _, value in answered))
        figures.errors = int(sum(value for labels, value in answered
                                 if labels.get("status") != "OK"))
        bounds, cumulative = _buckets(
            samples.get("ctpipe_gateway_request_latency_seconds_bucket", {}), version)
        figures.p99_seconds = _quantile(bounds, cumulative, 0.99)
        bounds, cumulative = _buckets(samples.get(f"{PREDICTION_PROBABILITY}_bucket", {}), version)
        if len(cumulative) and cumulative[-1] > 0:
            figures.histogram = np.diff(np.concatenate([[0.0], cumulative]))[:-1]


# ---- the verdict -------------------------------------------------------------------------
def judge(stable: VersionFigures, candidate: VersionFigures,
          thresholds: Thresholds) -> Verdict:
    reasons: list[str] = []
    distance = None
    if stable.probabilities is not None and len(stable.probabilities) and (
            candidate.probabilities is not None and len(candidate.probabilities)):
        distance = sample_distance(stable.probabilities, candidate.probabilities)
    elif stable.histogram is not None and candidate.histogram is not None:
        distance = histogram_distance(stable.histogram, candidate.histogram)
    few = [f.role for f in (stable, candidate) if f.requests < thresholds.min_requests]
    if few:
        reasons.append(f"{' and '.join(few)} answered fewer than {thresholds.min_requests} "
                       "requests in the window: wait for more traffic")
        return Verdict(WAIT, reasons, stable, candidate, distance)
    if stable.error_rate is not None and candidate.error_rate is not None and (
            candidate.error_rate > stable.error_rate + thresholds.max_error_rate_increase):
        reasons.append(f"error rate {candidate.error_rate:.2%} vs stable's "
                       f"{stable.error_rate:.2%} (allowed +{thresholds.max_error_rate_increase:.2%})")
    if stable.p99_seconds is not None and candidate.p99_seconds is not None and (
            candidate.p99_seconds > stable.p99_seconds * thresholds.max_p99_ratio
            + P99_SLACK_SECONDS):
        reasons.append(f"p99 latency {candidate.p99_seconds * 1e3:.1f} ms vs stable's "
                       f"{stable.p99_seconds * 1e3:.1f} ms (allowed x{thresholds.max_p99_ratio})")
    if distance is not None and distance > thresholds.max_prediction_shift:
        reasons.append(f"prediction distribution moved by {distance:.3f} (earth mover's "
                       f"distance; allowed {thresholds.max_prediction_shift})")
    allowed_drop = _allowed_auc_drop(stable, candidate, thresholds)
    if (stable.auc is not None and candidate.auc is not None
            and min(stable.labelled, candidate.labelled) >= thresholds.min_labelled
            and candidate.auc < stable.auc - allowed_drop):
        reasons.append(f"AUC {candidate.auc:.4f} vs stable's {stable.auc:.4f} (allowed "
                       f"-{allowed_drop:.4f}: the larger of {thresholds.max_auc_drop} and "
                       "what the labelled samples leave to chance)")
    if reasons:
        return Verdict(ROLLBACK, reasons, stable, candidate, distance)
    return Verdict(PROMOTE, ["every figure within its threshold"], stable, candidate, distance)


def _allowed_auc_drop(stable: VersionFigures, candidate: VersionFigures,
                      thresholds: Thresholds) -> float:
    """`max_auc_drop`, widened to 1.96 standard errors of the difference when the two AUCs
    come from samples too small to tell that much apart (each version answers other trips)."""
    errors = (stable.auc_standard_error, candidate.auc_standard_error)
    if None in errors:
        return thresholds.max_auc_drop
    return max(thresholds.max_auc_drop, 1.96 * float(np.hypot(*errors)))


def candidate_label(entry: Any, asked: str | None) -> str:
    if asked:
        if asked not in entry.version_labels:
            raise version_labels.ModelConfigError(f"model '{entry.name}' has no '{asked}' label")
        return asked
    found = [label for label in (CANARY, SHADOW) if label in entry.version_labels]
    if not found:
        raise version_labels.ModelConfigError(
            f"model '{entry.name}' has no '{CANARY}' or '{SHADOW}' label: nothing to analyze")
    return found[0]


def analyze(config_path: Path, model: str, *, candidate: str | None = None,
            logs: str | None = None, metrics: Iterable[str] = (), window_seconds: float = 0,
            labels_path: Path | None = None, thresholds: Thresholds = Thresholds()) -> Verdict:
    """Figures of stable and the candidate label over the window, and the verdict."""
    metrics = list(metrics)
    if not logs and not metrics:
        raise version_labels.ModelConfigError("give --logs and/or --metrics: the figures come "
                                              "from the gateway's prediction log or metrics")
    entry = version_labels.model_entry(version_labels.read_config(config_path), model)
    if STABLE not in entry.version_labels:
        raise version_labels.ModelConfigError(f"model '{model}' has no '{STABLE}' label")
    role = candidate_label(entry, candidate)
    stable = VersionFigures(STABLE, entry.version_labels[STABLE])
    challenger = VersionFigures(role, entry.version_labels[role])
    if stable.version == challenger.version:
        raise version_labels.ModelConfigError(f"'{role}' and '{STABLE}' are the same version "
                                              f"({stable.version}): nothing to compare")
    started = time.time()
    if metrics:
        before = scrape(metrics, model) if window_seconds > 0 else {}
        if window_seconds > 0:
            time.sleep(window_seconds)
        figures_from_metrics(_delta(scrape(metrics, model), before),
                             {stable.version: stable, challenger.version: challenger})
    if logs:
        by_version = {stable.version: VersionFigures(STABLE, stable.version),
                      challenger.version: VersionFigures(role, challenger.version)}
        figures_from_logs(logs, model, by_version,
                          started - window_seconds if window_seconds > 0 else None,
                          read_labels(labels_path) if labels_path else None)
        for mine, logged in ((stable, by_version[stable.version]),
                             (challenger, by_version[challenger.version])):
            mine.probabilities, mine.auc, mine.labelled = (logged.probabilities, logged.auc,
                                                           logged.labelled)
            mine.auc_standard_error = logged.auc_standard_error
            if not metrics:
                mine.requests = logged.requests
    return judge(stable, challenger, thresholds)


def apply(verdict: Verdict, config_path: Path, model: str) -> list[LabelChange]:
    """Promote: stable takes the candidate's version and the candidate label goes. Roll back:
    the candidate label goes (its traffic returns to stable). Wait: nothing changes."""
    role = verdict.candidate.role
    if verdict.recommendation == PROMOTE:
        return version_labels.relabel(config_path, model,
                                      {STABLE: verdict.candidate.version, role: None})
    if verdict.recommendation == ROLLBACK:
        return version_labels.relabel(config_path, model, {role: None})
    return []
