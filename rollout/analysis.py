"""The figures and the verdict of `ctpipe rollout analyze` (see the package's docstring).

Every rule that can roll back is a test on a confidence sequence (`sequential`), so an equal
canary is rolled back with probability at most `false_rollback_rate`, however often the
analysis looks; the rate is split evenly over the four tests (union bound):

- log loss per labelled trip (labels joined by request id): rolled back when the canary's
  mean is above stable's, promoted only when it is below stable's + `max_loss_increase`;
- mean predicted probability: rolled back when it moved by more than `max_prediction_shift`,
  promoted only when it stays within it;
- error rate (metrics): rolled back when above stable's + `max_error_rate_increase`;
- latency (metrics): rolled back when more than 1 % of the canary's requests are slower than
  stable's p99 x `max_p99_ratio` + 2 ms (the canary's p99 beyond that bound).

Log figures cover every record since the candidate's first logged answer (cumulative, which is
what makes repeated looks one sequential test); metrics cover `window_seconds`.
"""
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
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import rankdata

from ctpipe.common import features
from ctpipe.common.policies import CANARY, SHADOW, STABLE
from ctpipe.rollout import sequential
from ctpipe.rollout.sequential import Interval
from ctpipe.rollout.thresholds import PROMOTE, ROLLBACK, WAIT, Thresholds
from ctpipe.serving.client import protos, version_labels
from ctpipe.serving.client.examples import row_to_example
from ctpipe.serving.client.version_labels import LabelChange
from ctpipe.serving.prediction_log import read_logs, request_id
from ctpipe.serving.server.metrics import PREDICTION_PROBABILITY

P99_SLACK_SECONDS = 0.002
# The share of canary requests allowed beyond the latency bound (the "99" of p99).
SLOW_SHARE = 0.01
# Probabilities are clipped this far from 0 and 1 before their log loss is taken.
LOSS_CLIP = 1e-4
REQUEST_ID_COLUMN = "request_id"
EXAMPLE_COLUMN = "example"  # the trip's position in its request (0 when absent)
BY_REQUEST_ID, BY_FEATURES = "request id", "feature values"
_GRID = np.linspace(0, 1, 201)
_TESTS = ("loss", "predictions", "errors", "latency")


@dataclasses.dataclass
class VersionFigures:
    """One version's figures; None where the sources given cannot tell."""

    role: str
    version: int
    requests: int = 0
    errors: int | None = None
    p99_seconds: float | None = None
    # Latency histogram from the metrics: (upper bounds, cumulative counts).
    latency: tuple[np.ndarray, np.ndarray] | None = None
    probabilities: np.ndarray | None = None  # from the logs
    histogram: np.ndarray | None = None  # from the metrics: counts per 0.05 bucket
    losses: np.ndarray | None = None  # log loss of each labelled trip it answered
    auc: float | None = None
    auc_standard_error: float | None = None

    @property
    def labelled(self) -> int:
        return 0 if self.losses is None else len(self.losses)

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
        if self.losses is not None and len(self.losses):
            parts.append(f"log loss {self.losses.mean():.4f} on {self.labelled} labelled trips")
        if self.auc is not None:
            parts.append(f"AUC {self.auc:.4f} (±{self.auc_standard_error:.4f})")
        return ", ".join(parts)


@dataclasses.dataclass
class Labels:
    """Labelled trips keyed by (request id, position in the request), or, as the explicit
    fallback, by their feature values (equal trips collide: see `read_labels`)."""

    join: str  # BY_REQUEST_ID or BY_FEATURES
    by_key: dict[tuple, int]
    matched: set = dataclasses.field(default_factory=set)

    def describe(self) -> str:
        text = (f"labels joined by {self.join}: {len(self.matched)} of {len(self.by_key)} "
                "labelled trips matched a logged answer")
        if self.join == BY_FEATURES:
            text += (" (fallback --join-on-features: equal trips collide, so the two sides "
                     "may be scored on other trips than they answered)")
        return text


@dataclasses.dataclass
class Verdict:
    recommendation: str
    reasons: list[str]
    stable: VersionFigures
    candidate: VersionFigures
    distance: float | None
    tests: dict[str, Interval] = dataclasses.field(default_factory=dict)
    labels: Labels | None = None

    def to_json(self) -> dict[str, Any]:
        def figures(v: VersionFigures) -> dict[str, Any]:
            return {"role": v.role, "version": v.version, "requests": v.requests,
                    "error_rate": v.error_rate, "p99_ms": None if v.p99_seconds is None
                    else v.p99_seconds * 1e3, "auc": v.auc,
                    "auc_standard_error": v.auc_standard_error, "labelled": v.labelled,
                    "log_loss": None if not v.labelled else float(v.losses.mean()),
                    "mean_probability": None if v.probabilities is None or not len(
                        v.probabilities) else float(v.probabilities.mean())}
        return {"recommendation": self.recommendation, "reasons": self.reasons,
                "prediction_distance": self.distance, "stable": figures(self.stable),
                "candidate": figures(self.candidate),
                "tests": {name: dataclasses.asdict(interval)
                          for name, interval in self.tests.items()},
                "label_join": None if self.labels is None else self.labels.join,
                "labels_matched": None if self.labels is None else len(self.labels.matched)}


# ---- distances, AUC and loss ------------------------------------------------------------
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


# ---- labels and the prediction log ------------------------------------------------------
def _trip_key(example: Any) -> tuple:
    """A trip's model features and values: the fallback join key between a logged request
    and a labelled row (both go through a tf.Example, so floats are rounded alike)."""
    entries = example.features.feature
    key = []
    for name in features.FEATURE_NAMES:
        feature = entries[name] if name in entries else None
        kind = feature.WhichOneof("kind") if feature is not None else None
        key.append((name, tuple(getattr(feature, kind).value) if kind else ()))
    return tuple(key)


def _label_of(row: dict[str, str]) -> int | None:
    if row.get(features.LABEL, "") != "":
        return int(float(row[features.LABEL]))
    if row.get(features.TIPS, "") != "" and row.get(features.FARE, "") != "":
        return features.is_big_tipper(float(row[features.TIPS]), float(row[features.FARE]))
    return None


def read_labels(path: Path, join_on_features: bool = False) -> Labels:
    """Labelled trips from a CSV with `big_tipper` (or `tips` and `fare`): by default keyed by
    the `request_id` the gateway returned (and `example`, the trip's position in a request of
    several; 0 when absent); with `join_on_features`, by the trip's feature values instead
    (for data that kept no request id)."""
    by_key: dict[tuple, int] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not join_on_features and REQUEST_ID_COLUMN not in (reader.fieldnames or ()):
            raise version_labels.ModelConfigError(
                f"{path} has no '{REQUEST_ID_COLUMN}' column: labels are joined to logged "
                f"answers by the request id the gateway returned (x-request-id); for data "
                "without one, --join-on-features joins by feature values")
        for number, row in enumerate(reader, start=2):
            label = _label_of(row)
            if label is None:
                continue
            if join_on_features:
                example = protos.Example.FromString(row_to_example(row, f"{path} row {number}"))
                by_key[_trip_key(example)] = label
            elif row[REQUEST_ID_COLUMN]:
                position = row.get(EXAMPLE_COLUMN) or "0"
                try:
                    by_key[(row[REQUEST_ID_COLUMN], int(position))] = label
                except ValueError:
                    raise version_labels.ModelConfigError(
                        f"{path} row {number}: {EXAMPLE_COLUMN} must be a whole number, got "
                        f"{position!r}") from None
    return Labels(BY_FEATURES if join_on_features else BY_REQUEST_ID, by_key)


def figures_from_logs(prefix: str, model: str, versions: dict[int, VersionFigures],
                      candidate: int, labels: Labels | None) -> None:
    """Adds the logged answers of `versions` to their figures: every record from the
    candidate's first logged answer on (cumulative, so repeated looks are one sequential
    test)."""
    records = []
    for record in read_logs(prefix):
        spec = record.log_metadata.model_spec
        if spec.name == model and spec.version.value in versions and record.HasField(
                "predict_log"):
            records.append(record)
    started = min((r.log_metadata.timestamp_secs for r in records
                   if r.log_metadata.model_spec.version.value == candidate), default=None)
    scores: dict[int, list[float]] = {v: [] for v in versions}
    joined: dict[int, tuple[list[int], list[float]]] = {v: ([], []) for v in versions}
    for record in records:
        if started is None or record.log_metadata.timestamp_secs < started:
            continue
        version = record.log_metadata.model_spec.version.value
        answered = list(record.predict_log.response.outputs[features.PREDICTION_KEY].float_val)
        versions[version].requests += 1
        scores[version].extend(answered)
        if labels is None:
            continue
        if labels.join == BY_REQUEST_ID:
            identity = request_id(record)
            keys = [(identity, position) for position in range(len(answered))]
        else:
            sent = record.predict_log.request.inputs[features.EXAMPLES_KEY].string_val
            keys = [_trip_key(protos.Example.FromString(data)) for data in sent]
        for key, score in zip(keys, answered):
            label = labels.by_key.get(key)
            if label is not None:
                labels.matched.add(key)
                joined[version][0].append(label)
                joined[version][1].append(score)
    for version, figures in versions.items():
        figures.probabilities = np.array(scores[version], dtype=np.float64)
        if labels is None:
            continue
        truth, predicted = (np.array(values, dtype=np.float64) for values in joined[version])
        figures.losses = log_loss(truth, predicted)
        figures.auc = auc(truth, predicted) if len(truth) else None
        if figures.auc is not None:
            positives = int(np.sum(truth == 1))
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
        if len(cumulative):
            figures.latency = (bounds, cumulative)
        bounds, cumulative = _buckets(samples.get(f"{PREDICTION_PROBABILITY}_bucket", {}), version)
        if len(cumulative) and cumulative[-1] > 0:
            figures.histogram = np.diff(np.concatenate([[0.0], cumulative]))[:-1]


# ---- the verdict -------------------------------------------------------------------------
def _histogram_summary(counts: np.ndarray) -> tuple[float, float, int]:
    """(mean, variance, size) of probabilities known only by their 0.05-wide buckets: each
    at its bucket's middle (off by at most 0.025, well inside `max_prediction_shift`)."""
    middles = (np.arange(len(counts)) + 0.5) / len(counts)
    total = float(counts.sum())
    mean = float((counts * middles).sum() / total)
    return mean, float((counts * (middles - mean) ** 2).sum() / max(total - 1, 1)), int(total)


def _prediction_shift(stable: VersionFigures, candidate: VersionFigures, alpha: float,
                      scale: float) -> Interval | None:
    if stable.probabilities is not None and candidate.probabilities is not None and min(
            len(stable.probabilities), len(candidate.probabilities)) >= 2:
        return sequential.mean_difference(candidate.probabilities, stable.probabilities,
                                          alpha, scale)
    if stable.histogram is not None and candidate.histogram is not None and min(
            stable.histogram.sum(), candidate.histogram.sum()) >= 2:
        return sequential.summary_difference(_histogram_summary(candidate.histogram),
                                             _histogram_summary(stable.histogram), alpha, scale)
    return None


def _slow_requests(stable: VersionFigures, candidate: VersionFigures,
                   ratio: float) -> tuple[int, float] | None:
    """How many candidate requests took longer than stable's p99 x ratio + slack (rounded up
    to the histogram's next bucket bound, so never over-counted), and that bound."""
    if stable.p99_seconds is None or candidate.latency is None:
        return None
    bounds, cumulative = candidate.latency
    limit = stable.p99_seconds * ratio + P99_SLACK_SECONDS
    index = int(np.searchsorted(bounds, limit))
    if index >= len(bounds) - 1 or not cumulative[-1]:
        return None  # beyond the last finite bucket: the histogram cannot tell
    return int(cumulative[-1] - cumulative[index]), float(bounds[index])


def judge(stable: VersionFigures, candidate: VersionFigures, thresholds: Thresholds,
          labels: Labels | None = None) -> Verdict:
    """Rollback when any test finds the candidate worse; promote when every quality test
    (predictions, and the loss when labels were given) shows it is not worse by more than
    its margin; otherwise wait (see the module's docstring)."""
    distance = None
    if stable.probabilities is not None and len(stable.probabilities) and (
            candidate.probabilities is not None and len(candidate.probabilities)):
        distance = sample_distance(stable.probabilities, candidate.probabilities)
    elif stable.histogram is not None and candidate.histogram is not None:
        distance = histogram_distance(stable.histogram, candidate.histogram)
    verdict = Verdict(WAIT, [], stable, candidate, distance, labels=labels)
    few = [f.role for f in (stable, candidate) if f.requests < thresholds.min_requests]
    if few:
        verdict.reasons.append(f"{' and '.join(few)} answered fewer than "
                               f"{thresholds.min_requests} requests: wait for more traffic")
        return verdict
    alpha = thresholds.false_rollback_rate / len(_TESTS)
    tests, worse, unproven = verdict.tests, verdict.reasons, []

    shift = _prediction_shift(stable, candidate, alpha, thresholds.max_prediction_shift)
    if shift is not None:
        tests["predictions"] = shift
        limit = thresholds.max_prediction_shift
        if shift.lower > limit or shift.upper < -limit:
            worse.append(f"mean probability moved by {shift.describe()}, beyond ±{limit}")
        elif not -limit < shift.lower <= shift.upper < limit:
            unproven.append(f"mean probability moved by {shift.describe()}: not yet shown "
                            f"within ±{limit}")
    if labels is not None:
        enough = min(stable.labelled, candidate.labelled) >= thresholds.min_labelled
        if not enough:
            unproven.append(f"{stable.labelled} and {candidate.labelled} labelled trips "
                            f"(stable, {candidate.role}): waiting for {thresholds.min_labelled}"
                            " each")
        else:
            loss = tests["loss"] = sequential.mean_difference(
                candidate.losses, stable.losses, alpha, thresholds.max_loss_increase)
            if loss.lower > 0:
                worse.append(f"log loss higher than stable's by {loss.describe()}")
            elif loss.upper >= thresholds.max_loss_increase:
                unproven.append(f"log loss difference {loss.describe()}: not yet shown below "
                                f"+{thresholds.max_loss_increase}")
    if stable.errors is not None and candidate.errors is not None:
        errors = tests["errors"] = sequential.proportion_difference(
            (candidate.errors, candidate.requests), (stable.errors, stable.requests), alpha,
            thresholds.max_error_rate_increase)
        if errors.lower > thresholds.max_error_rate_increase:
            worse.append(f"error rate {candidate.error_rate:.2%} vs stable's "
                         f"{stable.error_rate:.2%}: difference {errors.describe()}, beyond "
                         f"+{thresholds.max_error_rate_increase:.2%}")
    slow = _slow_requests(stable, candidate, thresholds.max_p99_ratio)
    if slow is not None:
        count, bound = slow
        latency = tests["latency"] = sequential.proportion(count, candidate.requests, alpha,
                                                           SLOW_SHARE)
        if latency.lower > SLOW_SHARE:
            worse.append(f"{latency.describe()} of {candidate.role} requests slower than "
                         f"{bound * 1e3:.1f} ms (stable's p99 {stable.p99_seconds * 1e3:.1f} "
                         f"ms x{thresholds.max_p99_ratio} + {P99_SLACK_SECONDS * 1e3:.0f} ms), "
                         f"more than {SLOW_SHARE:.0%}")
    if worse:
        verdict.recommendation = ROLLBACK
    elif unproven:
        verdict.reasons.extend(unproven)
    else:
        verdict.recommendation = PROMOTE
        verdict.reasons.append("no test finds it worse and every quality figure is within its "
                               "margin")
    if labels is not None:
        verdict.reasons.append(labels.describe())
    return verdict


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
            labels_path: Path | None = None, join_on_features: bool = False,
            thresholds: Thresholds = Thresholds()) -> Verdict:
    """Figures of stable and the candidate label, and the verdict: logs from the candidate's
    first logged answer on, metrics over `window_seconds` (0: since the gateways started)."""
    metrics = list(metrics)
    if not logs and not metrics:
        raise version_labels.ModelConfigError("give --logs and/or --metrics: the figures come "
                                              "from the gateway's prediction log or metrics")
    if labels_path is not None and not logs:
        raise version_labels.ModelConfigError("--labels needs --logs: labels are joined to "
                                              "the logged answers")
    entry = version_labels.model_entry(version_labels.read_config(config_path), model)
    if STABLE not in entry.version_labels:
        raise version_labels.ModelConfigError(f"model '{model}' has no '{STABLE}' label")
    role = candidate_label(entry, candidate)
    stable = VersionFigures(STABLE, entry.version_labels[STABLE])
    challenger = VersionFigures(role, entry.version_labels[role])
    if stable.version == challenger.version:
        raise version_labels.ModelConfigError(f"'{role}' and '{STABLE}' are the same version "
                                              f"({stable.version}): nothing to compare")
    labels = read_labels(labels_path, join_on_features) if labels_path else None
    if metrics:
        before = scrape(metrics, model) if window_seconds > 0 else {}
        if window_seconds > 0:
            time.sleep(window_seconds)
        figures_from_metrics(_delta(scrape(metrics, model), before),
                             {stable.version: stable, challenger.version: challenger})
    if logs:
        by_version = {stable.version: VersionFigures(STABLE, stable.version),
                      challenger.version: VersionFigures(role, challenger.version)}
        figures_from_logs(logs, model, by_version, challenger.version, labels)
        for mine, logged in ((stable, by_version[stable.version]),
                             (challenger, by_version[challenger.version])):
            mine.probabilities, mine.losses = logged.probabilities, logged.losses
            mine.auc, mine.auc_standard_error = logged.auc, logged.auc_standard_error
            if not metrics:
                mine.requests = logged.requests
    return judge(stable, challenger, thresholds, labels)


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
