"""The verdict of `ctpipe rollout analyze` on the figures of stable and the candidate (see the
package's docstring), and the label moves that carry it out.

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

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ctpipe.common.policies import CANARY, SHADOW, STABLE
from ctpipe.rollout import sequential
from ctpipe.rollout.figures import VersionFigures
from ctpipe.rollout.labels import Labels, read_labels
from ctpipe.rollout.metrics import figures_from_metrics, scrape_window
from ctpipe.rollout.prediction_logs import figures_from_logs
from ctpipe.rollout.sequential import Interval
from ctpipe.rollout.statistics import histogram_distance, histogram_summary, sample_distance
from ctpipe.rollout.thresholds import PROMOTE, ROLLBACK, WAIT, Thresholds
from ctpipe.serving.client import version_labels
from ctpipe.serving.client.version_labels import LabelChange

P99_SLACK_SECONDS = 0.002
# The share of canary requests allowed beyond the latency bound (the "99" of p99).
SLOW_SHARE = 0.01
_TESTS = ("loss", "predictions", "errors", "latency")


@dataclasses.dataclass
class Verdict:
    """A recommendation (promote, wait, roll back), why, and what it was decided on."""

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


def _prediction_shift(stable: VersionFigures, candidate: VersionFigures, alpha: float,
                      scale: float) -> Interval | None:
    if stable.probabilities is not None and candidate.probabilities is not None and min(
            len(stable.probabilities), len(candidate.probabilities)) >= 2:
        return sequential.mean_difference(candidate.probabilities, stable.probabilities,
                                          alpha, scale)
    if stable.histogram is not None and candidate.histogram is not None and min(
            stable.histogram.sum(), candidate.histogram.sum()) >= 2:
        return sequential.summary_difference(histogram_summary(candidate.histogram),
                                             histogram_summary(stable.histogram), alpha, scale)
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
        figures_from_metrics(scrape_window(metrics, model, window_seconds),
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
