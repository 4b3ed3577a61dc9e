"""What `ctpipe report` shows, read from a workspace without TensorFlow or TFX.

Runs, their steps and outputs come from the ML Metadata store (`ctpipe.reporting.status`); the files
behind the artifacts are read with the protos' own packages (tensorflow_metadata for TFDV's
statistics and anomalies, `ctpipe.reporting.tfma_results` for the Evaluator's results) and JSON. A cached
step's outputs are the artifacts an earlier run made: each is read once and shown once, under
the run that made it, the others refer to it.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from ctpipe.common import layout, properties
from ctpipe.common.errors import UserError
from ctpipe.monitoring.options import SUMMARY_FORMAT, WORKSPACE_SUMMARY
from ctpipe.reporting import tfma_results
from ctpipe.reporting.status import RunSummary, SpanHealth, WorkspaceStatus, custom_int, custom_str
from ctpipe.validation.schema_anomalies import describe_anomalies

# Numeric features: the common axis of both sides' histograms has this many equal bins.
HISTOGRAM_BINS = 20
# A side's values end at its 90th percentile on the axis when its largest value lies beyond
# this many times that distance from the smallest: one long trip must not flatten the rest;
# the share beyond the axis is reported.
TAIL_CUT = 1.5
# Categorical features: every value of few numeric ids (hours, weekdays), else the most
# frequent values of either side; the rest is one "other" bar.
ALL_CATEGORIES_UP_TO = 24
TOP_CATEGORIES = 12
# The ConceptDrift step's custom properties shown per run (components/concept_drift.py).
CONCEPT_FIGURES = ("span", "served_version", "auc", "auc_when_pushed", "drop", "concept_drift",
                   "examples")
_KIND_NAMES = {"num_stats": "numbers", "string_stats": "strings"}


class ReportError(UserError):
    """The workspace cannot be reported on; the message names what is missing."""


@dataclasses.dataclass
class Side:
    """One side's distribution of a feature."""

    with_value: float  # share of rows holding a value
    shares: list[float]  # per bin or category, of the values
    beyond: float = 0.0  # numeric: share of values above the axis; categorical: other values


@dataclasses.dataclass
class Distribution:
    feature: str
    kind: str  # numeric | categorical
    bins: list[float] | list[str]  # numeric: bin edges (one more than shares); categories
    newest: Side | None
    reference: Side | None
    note: str = ""  # why a side is missing


@dataclasses.dataclass
class DataCheck:
    """What a run found in its newest span: distributions, schema anomalies, drift."""

    distributions: list[Distribution] | None  # newest span vs reference; None: no statistics
    anomalies: list[str] | None  # None: not validated
    drift: list[dict[str, Any]] | None  # drift.json's findings; None: not checked


@dataclasses.dataclass
class Evaluation:
    slices: list[tfma_results.SliceMetrics]
    calibration: dict[str, list[tfma_results.CalibrationBin]]
    min_auc: float | None  # the value threshold on the overall AUC
    max_auc_loss: float | None  # the allowed fall below the baseline's AUC


@dataclasses.dataclass
class RunReport:
    summary: RunSummary
    window: str | None
    newest_span: int | None
    ingested: str
    reused: str
    reference_spans: str | None
    # Each result is read under the first run that has it; later runs (cached steps) name it.
    data: DataCheck | None
    data_shown_in: str | None  # None: no data was read
    evaluation: Evaluation | None
    evaluation_shown_in: str | None  # None: not evaluated
    concept: dict[str, Any] | None  # the ConceptDrift step's figures for this run's span


@dataclasses.dataclass
class PushedVersion:
    version: str
    run_id: str
    window: str | None
    record: dict[str, Any] | None  # push.json: AUC at the push, eval predictions
    card: dict[str, Any] | None  # model_card.json: window, training, origin
    note: str  # why they are missing, if they are


@dataclasses.dataclass
class WorkspaceReport:
    workspace: Path
    runs: list[RunReport]  # oldest first
    pushes: list[PushedVersion]  # oldest first
    span_history: list[SpanHealth]
    max_auc_drop: float | None
    monitor: dict[str, Any] | None
    monitor_path: Path


def _folder(artifact) -> Path:
    """An artifact's folder; the report reads local workspaces (no TensorFlow file systems)."""
    if "://" in artifact.uri:
        raise ReportError(f"artifact in {artifact.uri}: the report reads artifacts in local "
                          "folders only (a pipeline root on a bucket is not supported)")
    return Path(artifact.uri)


def _read_statistics(artifact, split: str) -> statistics_pb2.DatasetFeatureStatistics:
    path = _folder(artifact) / f"Split-{split}" / properties.STATISTICS_FILE
    if not path.is_file():
        raise ReportError(f"statistics missing: {path}")
    datasets = statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes()).datasets
    if len(datasets) != 1:
        raise ReportError(f"{path} holds {len(datasets)} datasets; expected one (unsliced)")
    return datasets[0]


def _features(dataset) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    return {".".join(f.path.step) or f.name: f for f in dataset.features} if dataset else {}


def _with_value(feature, rows: int) -> float:
    common = getattr(feature, feature.WhichOneof("stats")).common_stats
    return min(1.0, common.tot_num_values / rows) if rows else 0.0


def _quantile_buckets(feature) -> list[tuple[float, float, float]]:
    """(low, high, share) of TFDV's quantile histogram, whose buckets hold equal shares."""
    for histogram in feature.num_stats.histograms:
        if histogram.type == statistics_pb2.Histogram.QUANTILES:
            total = sum(b.sample_count for b in histogram.buckets)
            return [(b.low_value, b.high_value, b.sample_count / total)
                    for b in histogram.buckets if b.sample_count] if total else []
    return []


def _axis(sides: list[list[tuple[float, float, float]]]) -> tuple[float, float]:
    """From the smallest value to the larger of the sides' ends: a side's largest value, or its
    90th percentile when the largest lies far beyond it (a long tail)."""
    low = min(buckets[0][0] for buckets in sides)
    ends = []
    for buckets in sides:
        top = buckets[-1][1]
        p90 = next(high for high, cumulative in _cumulative(buckets) if cumulative >= 0.9 - 1e-9)
        ends.append(p90 if p90 > low and top - low > TAIL_CUT * (p90 - low) else top)
    high = max(ends)
    return low, high if high > low else low + 1.0


def _cumulative(buckets: list[tuple[float, float, float]]) -> Iterator[tuple[float, float]]:
    """(upper edge, share of values up to it) of each bucket."""
    total = 0.0
    for _, high, share in buckets:
        total += share
        yield high, total


def _rebin(buckets: list[tuple[float, float, float]], edges: list[float]) -> tuple[list[float],
                                                                                   float]:
    """Each bucket's share spread evenly over its range, summed per bin of `edges`; the share
    above the last edge is returned apart."""
    low, high = edges[0], edges[-1]
    width = (high - low) / (len(edges) - 1)
    shares, beyond = [0.0] * (len(edges) - 1), 0.0
    for start, end, share in buckets:
        if end <= start:  # a point mass
            if start > high:
                beyond += share
            else:
                shares[min(len(shares) - 1, max(0, int((start - low) / width)))] += share
            continue
        for index in range(len(shares)):
            overlap = min(end, edges[index + 1]) - max(start, edges[index])
            if overlap > 0:
                shares[index] += share * overlap / (end - start)
        if end > high:
            beyond += share * (end - max(start, high)) / (end - start)
    return shares, beyond


def _numeric(name: str, newest, reference, rows: tuple[int, int]) -> Distribution | None:
    sides = [(_quantile_buckets(f) if f is not None else []) for f in (newest, reference)]
    present = [buckets for buckets in sides if buckets]
    if not present:
        return None
    low, high = _axis(present)
    edges = [low + (high - low) * i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]
    made = []
    for feature, buckets, count in zip((newest, reference), sides, rows):
        if not buckets:
            made.append(None)
            continue
        shares, beyond = _rebin(buckets, edges)
        made.append(Side(_with_value(feature, count), shares, beyond))
    return Distribution(name, "numeric", edges, made[0], made[1])


def _counts(feature) -> dict[str, float]:
    stats = feature.string_stats
    if stats.rank_histogram.buckets:
        return {b.label: b.sample_count for b in stats.rank_histogram.buckets}
    return {v.value: v.frequency for v in stats.top_values}


def _categorical(name: str, newest, reference, rows: tuple[int, int]) -> Distribution | None:
    sides = []
    for feature, count in zip((newest, reference), rows):
        if feature is None:
            sides.append(None)
            continue
        counts = _counts(feature)
        total = feature.string_stats.common_stats.tot_num_values or sum(counts.values()) or 1
        sides.append((feature, count, {label: value / total for label, value in counts.items()}))
    present = [side for side in sides if side is not None]
    if not present or not any(shares for _, _, shares in present):
        return None
    top = sorted({label for _, _, shares in present for label in shares},
                 key=lambda label: (-max(shares.get(label, 0.0) for _, _, shares in present),
                                    label))
    numeric = all(label.lstrip("-").isdigit() for label in top)
    labels = top if numeric and len(top) <= ALL_CATEGORIES_UP_TO else top[:TOP_CATEGORIES]
    if numeric:
        labels.sort(key=int)
    made = []
    for side in sides:
        if side is None:
            made.append(None)
            continue
        feature, count, shares = side
        values = [shares.get(label, 0.0) for label in labels]
        made.append(Side(_with_value(feature, count), values, max(0.0, 1.0 - sum(values))))
    return Distribution(name, "categorical", labels, made[0], made[1])


def distributions(statistics, reference) -> list[Distribution]:
    """The newest span's training split against the reference's (None: the first span), feature
    by feature: the split drift compares (ctpipe.validation.drift.DEFAULT_SPLIT)."""
    newest = _read_statistics(statistics, properties.SAMPLE_SPLIT)
    previous = (_read_statistics(reference, properties.SAMPLE_SPLIT) if reference is not None
                else None)
    rows = (newest.num_examples, previous.num_examples if previous else 0)
    new_features, old_features = _features(newest), _features(previous)
    result = []
    for name in sorted(set(new_features) | set(old_features)):
        pair = [new_features.get(name), old_features.get(name)]
        kinds = [f.WhichOneof("stats") if f is not None else None for f in pair]
        note = ""
        if None not in kinds and kinds[0] != kinds[1]:  # e.g. text in a numeric column
            note = (f"not comparable: {_KIND_NAMES.get(kinds[1], kinds[1])} in the reference, "
                    f"{_KIND_NAMES.get(kinds[0], kinds[0])} in the newest span")
            pair[1] = None
        draw = {"num_stats": _numeric, "string_stats": _categorical}.get(kinds[0] or kinds[1])
        made = draw(name, *pair, rows) if draw else None  # bytes, structs: nothing to draw
        if made is not None:
            made.note = note
            result.append(made)
    return result


def _split_names(artifact) -> list[str]:
    value = artifact.properties.get("split_names")
    return json.loads(value.string_value) if value is not None and value.string_value else []


def anomaly_lines(artifact) -> list[str]:
    by_split = {}
    for split in _split_names(artifact):
        path = _folder(artifact) / f"Split-{split}" / properties.ANOMALIES_FILE
        if not path.is_file():
            raise ReportError(f"anomalies of split '{split}' missing: {path}")
        by_split[split] = anomalies_pb2.Anomalies.FromString(path.read_bytes())
    return describe_anomalies(by_split)


def _drift(artifact) -> list[dict[str, Any]]:
    path = _folder(artifact) / properties.DRIFT_FILE
    if not path.is_file():
        raise ReportError(f"the validation gate's drift findings are missing: {path}")
    return json.loads(path.read_text())


def _auc_thresholds(folder: Path) -> tuple[float | None, float | None]:
    """The overall AUC's thresholds from the Evaluator's eval_config.json (TFMA writes it)."""
    path = folder / "eval_config.json"
    if not path.is_file():
        return None, None
    config = json.loads(path.read_text()).get("evalConfig", {})
    for spec in config.get("metricsSpecs", []):
        for metric in spec.get("metrics", []):
            if metric.get("className") != "AUC":
                continue
            for per_slice in metric.get("perSliceThresholds", []):
                threshold = per_slice.get("threshold", {})
                low = threshold.get("valueThreshold", {}).get("lowerBound")
                change = threshold.get("changeThreshold", {}).get("absolute")
                return low, -change if change is not None else None
    return None, None


def _evaluation(artifact) -> Evaluation:
    folder = _folder(artifact)
    return Evaluation(tfma_results.load_metrics(folder), tfma_results.load_calibration(folder),
                      *_auc_thresholds(folder))


def _concept(artifact) -> dict[str, Any]:
    """The ConceptDrift step's custom properties (span, served_version, auc, ...)."""
    return {key: getattr(value, value.WhichOneof("value"))
            for key, value in artifact.custom_properties.items()
            if key in CONCEPT_FIGURES and value.WhichOneof("value")}


def _pushed(version: str, run_id: str, window: str | None, destination: str) -> PushedVersion:
    """A pushed version with the push record and model card kept in its folder."""
    if "://" in destination:
        return PushedVersion(version, run_id, window, None, None,
                             f"pushed to {destination}: the report reads local folders only")
    found = {}
    for name in (layout.PUSH_RECORD_FILE, layout.MODEL_CARD_FILE):
        path = Path(destination) / name
        found[name] = json.loads(path.read_text()) if path.is_file() else None
    missing = [name for name, value in found.items() if value is None]
    note = (f"missing in {destination}: {', '.join(missing)} (version folder removed?)"
            if missing else "")
    return PushedVersion(version, run_id, window, found[layout.PUSH_RECORD_FILE],
                         found[layout.MODEL_CARD_FILE], note)


def read_monitor(workspace: Path) -> dict[str, Any] | None:
    """`ctpipe monitor`'s saved summary (docs/monitoring.md), or None when none was saved."""
    path = workspace / WORKSPACE_SUMMARY
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportError(f"{path} is not JSON ({err}); run ctpipe monitor again") from err
    if summary.get("format") != SUMMARY_FORMAT:
        raise ReportError(f"{path} has format {summary.get('format')!r}; this report reads "
                          f"format {SUMMARY_FORMAT}")
    return summary


def _max_auc_drop(status: WorkspaceStatus) -> float | None:
    """The concept-drift limit the newest ConceptDrift execution ran with."""
    executions = [e for e in status.store.get_executions()
                  if status.node_of.get(e.id) == "ConceptDrift"]
    if not executions:
        return None
    newest = max(executions, key=lambda e: e.id)
    value = newest.custom_properties.get("max_auc_drop")
    return value.double_value if value is not None else None


def read_workspace(workspace: Path) -> WorkspaceReport:
    """Everything the report shows. Raises ReportError when the workspace has no metadata
    store or no run."""
    workspace = Path(workspace)
    if not workspace.is_dir():
        raise ReportError(f"workspace not found: {workspace}")
    status = WorkspaceStatus(workspace)
    summaries = list(reversed(status.runs(limit=10**6)))
    if not summaries:
        raise ReportError(f"no run recorded in {workspace}: run `ctpipe run` first")
    # Artifact id (a data check: the ids of its three artifacts) -> the run that shows it.
    shown_in: dict[int | tuple[int | None, ...], str] = {}
    runs, pushes = [], []
    for summary in summaries:
        outputs = status.run_outputs(summary.context_id)
        examples = outputs.get(("SpanWindow", "window_examples"))
        found = examples is not None
        statistics = outputs.get(("StatisticsGen", "statistics"))
        reference = outputs.get(("SpanWindow", "reference_statistics"))
        if reference is not None and not _split_names(reference):
            reference = None  # the first span: nothing to compare with
        evaluation = outputs.get(("Evaluator", "evaluation"))
        anomalies = outputs.get(("ExampleValidator", "anomalies"))
        drift = outputs.get(("ValidationGate", "drift_report"))
        concept = outputs.get(("ConceptDrift", "evaluation"))
        data = evaluation_view = None
        data_key = tuple(a.id if a is not None else None
                         for a in (statistics, anomalies, drift))
        if any(data_key) and data_key not in shown_in:
            shown_in[data_key] = summary.run_id
            data = DataCheck(
                distributions=(distributions(statistics, reference) if statistics is not None
                               else None),
                anomalies=anomaly_lines(anomalies) if anomalies is not None else None,
                drift=_drift(drift) if drift is not None else None)
        if evaluation is not None and evaluation.id not in shown_in:
            shown_in[evaluation.id] = summary.run_id
            evaluation_view = _evaluation(evaluation)
        runs.append(RunReport(
            summary=summary,
            window=custom_str(examples, properties.WINDOW_SPANS) if found else None,
            newest_span=custom_int(examples, properties.SPAN) if found else None,
            ingested=custom_str(examples, properties.INGESTED_SPANS) or "" if found else "",
            reused=custom_str(examples, properties.REUSED_SPANS) or "" if found else "",
            reference_spans=(custom_str(reference, properties.REFERENCE_SPANS)
                             if reference is not None else None),
            data=data, data_shown_in=shown_in.get(data_key),
            evaluation=evaluation_view,
            evaluation_shown_in=shown_in.get(evaluation.id) if evaluation is not None else None,
            concept=_concept(concept) if concept is not None else None))
        pushed = outputs.get(("Pusher", "pushed_model"))
        if pushed is not None and custom_int(pushed, properties.PUSHED) == 1 and (
                pushed.id not in shown_in):
            shown_in[pushed.id] = summary.run_id
            pushes.append(_pushed(custom_str(pushed, properties.PUSHED_VERSION) or "?",
                                  summary.run_id, runs[-1].window,
                                  custom_str(pushed, properties.PUSHED_DESTINATION) or ""))
    return WorkspaceReport(workspace=workspace.resolve(), runs=runs, pushes=pushes,
                           span_history=status.span_history(),
                           max_auc_drop=_max_auc_drop(status), monitor=read_monitor(workspace),
                           monitor_path=workspace.resolve() / WORKSPACE_SUMMARY)

