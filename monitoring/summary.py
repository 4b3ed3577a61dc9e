"""Training/serving skew and the model's answers, per served version: what `ctpipe monitor`
measures and reports. Reference and formats: docs/monitoring.md.

Each version with at least `min_examples` logged examples is compared with what the pipeline
stored beside it (`assets.extra/ctpipe/`): its features' TFDV statistics with the training
statistics, by the curated schema's skew comparators, and its predictions with its predictions
on the eval split.
"""
from __future__ import annotations

import datetime
import json
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from ctpipe.common.layout import MODEL_CARD_FILE, PUSH_RECORD_FILE, TRAINING_STATISTICS_FILE
from ctpipe.common.storage import register_filesystems
from ctpipe.monitoring.logs import LoggedVersion, MonitorError, read_window
from ctpipe.validation.drift import (
    DriftError,
    format_finding,
    prediction_summary,
    skew_findings,
    statistics_of_examples,
    value_rates,
)

if TYPE_CHECKING:  # numpy and TensorFlow load when the command runs, not with `ctpipe --help`
    import numpy as np

# Output check: for each quantile q_p the eval split recorded, how far the share of served
# predictions at q_p (within +-OUTPUT_TOLERANCE) is from p; the largest such gap. A
# Kolmogorov-Smirnov distance read at the recorded quantiles, with a tolerance on the
# probability axis: the model answers ~0 for every cash trip (their tips are not recorded), so
# several eval quantiles sit inside that point mass, where differences of 1e-6 would otherwise
# decide the share. Threshold: the no-shift p99 of 200 served examples against a 170-row eval
# split (a window of 2016's small quarters), 0.095, plus a fifth; against the 2,953-row eval
# split of spans 1-15 the p99 is 0.070 (`python -m bench.monitor --output-noise`,
# docs/monitoring.md).
OUTPUT_TOLERANCE = 0.01
OUTPUT_DISTANCE_THRESHOLD = 0.12
# Null or NaN predictions: crossed above the eval split's share plus this margin. The model is
# deterministic and NaN-free on valid inputs, so nulls come from broken requests; the margin
# keeps one stray request in a window of thousands from paging anyone.
NULL_FRACTION_MARGIN = 0.001
# The workspace's copy of the latest summary, which `ctpipe report` shows.
WORKSPACE_SUMMARY = Path("monitor") / "latest.json"
SUMMARY_FORMAT = 1


def output_distance(served: np.ndarray, eval_quantiles: Mapping[str, float],
                    tolerance: float = OUTPUT_TOLERANCE) -> tuple[float, str, tuple[float, float]]:
    """The largest gap, over the eval split's quantiles q_p, between p and the share of the
    finite `served` predictions <= q_p, where the share may be read anywhere in
    [q_p - tolerance, q_p + tolerance]; with the p where it occurs and the served shares
    <= q_p - tolerance and <= q_p + tolerance there."""
    finite = np.sort(served[np.isfinite(served)])
    worst: tuple[float, str, tuple[float, float]] | None = None
    for key, value in sorted(eval_quantiles.items(), key=lambda item: float(item[0])):
        low, high = (np.searchsorted(finite, [value - tolerance, value + tolerance],
                                     side="right") / len(finite)).tolist()
        gap = max(0.0, low - float(key), float(key) - high)
        if worst is None or gap > worst[0]:
            worst = (gap, key, (low, high))
    if worst is None:
        raise MonitorError("the eval split's prediction summary holds no quantiles")
    return worst


def _read_bytes(path: str) -> bytes | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read()


def _version_references(version_dir: str, version: int) -> tuple[Any, dict, dict | None]:
    """(training statistics, eval_predictions of the push record, model card or None)."""
    statistics = _read_bytes(posixpath.join(version_dir, TRAINING_STATISTICS_FILE))
    if statistics is None:
        raise MonitorError(f"version {version} has no {TRAINING_STATISTICS_FILE} in "
                           f"{version_dir}: it was pushed without training statistics (by a "
                           "pipeline older than monitoring?), so its skew cannot be measured")
    record = _read_bytes(posixpath.join(version_dir, PUSH_RECORD_FILE))
    eval_predictions = json.loads(record).get("eval_predictions") if record else None
    if not eval_predictions or "quantiles" not in eval_predictions:
        raise MonitorError(f"version {version}: {posixpath.join(version_dir, PUSH_RECORD_FILE)} "
                           "is missing or has no eval_predictions with quantiles, which the "
                           "output check compares with")
    card = _read_bytes(posixpath.join(version_dir, MODEL_CARD_FILE))
    return (statistics_pb2.DatasetFeatureStatisticsList.FromString(statistics),
            eval_predictions, json.loads(card) if card else None)


def _feature_rows(findings: Sequence, serving_rates: Mapping, training_rates: Mapping
                  ) -> list[dict[str, Any]]:
    """One row per (feature, comparator): the values' and the presence measure's distances."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for finding in findings:
        row = rows.setdefault((finding.feature, finding.comparator), {
            "feature": finding.feature, "comparator": finding.comparator,
            "threshold": finding.threshold, "distance": None, "presence_distance": None,
            "crossed": False,
            "missing": {"serving": serving_rates[finding.feature].missing,
                        "training": training_rates[finding.feature].missing},
            "nan": {"serving": serving_rates[finding.feature].nan,
                    "training": training_rates[finding.feature].nan}})
        row["presence_distance" if finding.presence else "distance"] = finding.distance
        row["crossed"] = row["crossed"] or finding.crossed
    return list(rows.values())


def compare_version(logged: LoggedVersion, version_dir: str, schema) -> dict[str, Any]:
    """One version's section of the summary; `crossed` lists what crossed, one line each."""
    training, eval_predictions, card = _version_references(version_dir, logged.version)
    try:
        serving = statistics_of_examples(logged.examples, schema)
    except (RuntimeError, ValueError) as err:  # e.g. a feature sent as ints and as floats
        raise MonitorError(f"version {logged.version}: the logged examples cannot be profiled "
                           f"together ({err}); a client sends a feature with another type") \
            from None
    try:
        findings = skew_findings(serving, {"train": training}, schema)
    except DriftError as err:
        raise MonitorError(f"version {logged.version}: {err}") from None
    names = sorted({finding.feature for finding in findings})
    crossed = [format_finding(finding) for finding in findings if finding.crossed]

    served = np.concatenate(logged.probabilities)
    summary = prediction_summary(served.tolist())
    output: dict[str, Any] = {
        "serving": summary, "eval": eval_predictions, "distance": None, "at_quantile": None,
        "served_shares_at_quantile": None, "tolerance": OUTPUT_TOLERANCE,
        "threshold": OUTPUT_DISTANCE_THRESHOLD,
        "null_threshold": eval_predictions.get("null_fraction", 0.0) + NULL_FRACTION_MARGIN}
    output_crossed = []
    if "quantiles" in summary:
        distance, at, (low, high) = output_distance(served, eval_predictions["quantiles"])
        output.update(distance=distance, at_quantile=at, served_shares_at_quantile=[low, high])
        if distance > OUTPUT_DISTANCE_THRESHOLD:
            output_crossed.append(
                f"output: {low:.1%}-{high:.1%} of the served predictions are <= the eval "
                f"split's {at} quantile ({eval_predictions['quantiles'][at]:.3f} +- "
                f"{OUTPUT_TOLERANCE}) instead of {float(at):.0%}: distance {distance:.3f} > "
                f"threshold {OUTPUT_DISTANCE_THRESHOLD:.3f}")
    if summary["null_fraction"] > output["null_threshold"]:
        output_crossed.append(
            f"output: {summary['null_fraction']:.2%} of the predictions null or NaN > threshold "
            f"{output['null_threshold']:.2%} (eval split "
            f"{eval_predictions.get('null_fraction', 0.0):.2%})")
    output["crossed"] = bool(output_crossed)
    return {"version": logged.version, "requests": logged.requests,
            "examples": len(logged.examples), "compared": True, "model_card": card,
            "features": _feature_rows(findings, value_rates(serving, names),
                                      value_rates(training, names)),
            "output": output, "crossed": crossed + output_crossed}


def monitor(logs: str, base_path: str, model_name: str, schema_path: str, last: int,
            min_examples: int) -> dict[str, Any]:
    """Reads the window and compares every version with enough examples; the summary."""
    register_filesystems([logs, base_path])
    try:
        schema = text_format.Parse(Path(schema_path).read_text(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as err:
        raise MonitorError(f"cannot read the schema {schema_path}: {err}") from None
    window = read_window(logs, model_name, last)
    sections = []
    for version, logged in sorted(window.versions.items()):
        if len(logged.examples) < min_examples:
            sections.append({"version": version, "requests": logged.requests,
                             "examples": len(logged.examples), "compared": False,
                             "reason": f"{len(logged.examples)} examples, fewer than "
                                       f"--min-examples {min_examples}", "crossed": []})
            continue
        sections.append(compare_version(logged, posixpath.join(base_path, str(version)),
                                        schema))
    if not any(section["compared"] for section in sections):
        counts = ", ".join(f"version {s['version']}: {s['examples']}" for s in sections)
        raise MonitorError(f"too few logged examples to compare ({counts}; at least "
                           f"{min_examples} per version): widen --last, raise the sampling "
                           "rate, or lower --min-examples (noisier)")
    crossed = [f"version {s['version']}: {line}" for s in sections for line in s["crossed"]]
    return {
        "format": SUMMARY_FORMAT,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model_name": model_name, "logs": logs, "model_base_path": base_path,
        "schema": schema_path,
        "window": {"last": last, "records": window.records, "files": window.files,
                   "skipped": dict(window.skipped), "notes": window.notes},
        "min_examples": min_examples, "versions": sections,
        "status": "crossed" if crossed else "ok", "crossed": crossed}


def _percent(value: float) -> str:
    return f"{value:.1%}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The readable report: per version, a feature table and the output's distribution."""
    window = summary["window"]
    lines = [f"ctpipe monitor: model {summary['model_name']}, last {window['records']} logged "
             f"requests of {window['last']} asked ({len(window['files'])} file(s) under "
             f"{summary['logs']})"]
    lines += [f"  skipped {count} {what}" for what, count in window["skipped"].items()]
    lines += [f"  note: {note}" for note in window["notes"]]
    for section in summary["versions"]:
        lines.append("")
        head = (f"version {section['version']}: {section['requests']} requests, "
                f"{section['examples']} examples")
        if not section["compared"]:
            lines.append(f"{head}: not compared ({section['reason']})")
            continue
        card = section["model_card"] or {}
        if card.get("window_spans"):
            head += f", trained on spans {card['window_spans']}"
        lines.append(head)
        lines.append(f"  {'feature':<24} {'comparator':<26} {'distance':>8} {'presence':>8} "
                     f"{'threshold':>9}  {'missing serving/training':>24}  "
                     f"{'NaN serving/training':>20}")
        for row in section["features"]:
            distance = "-" if row["distance"] is None else f"{row['distance']:.3f}"
            lines.append(
                f"  {row['feature']:<24} {row['comparator']:<26} {distance:>8} "
                f"{row['presence_distance']:>8.3f} {row['threshold']:>9.3f}  "
                f"{_percent(row['missing']['serving']) + ' / ' + _percent(row['missing']['training']):>24}  "
                f"{_percent(row['nan']['serving']) + ' / ' + _percent(row['nan']['training']):>20}"
                f"{'  CROSSED' if row['crossed'] else ''}")
        output = section["output"]
        lines.append(f"  {'predictions':<24} {'count':>7} {'mean':>7} {'std':>7} {'min':>7} "
                     + " ".join(f"{'q' + q:>7}" for q in sorted(
                         output["eval"]["quantiles"], key=float))
                     + f" {'max':>7} {'null':>7}")
        for who in ("serving", "eval"):
            figures = output[who]
            quantiles = figures.get("quantiles", {})
            values = [figures.get(name) for name in ("mean", "std", "min")] + [
                quantiles.get(q) for q in sorted(output["eval"]["quantiles"], key=float)] + [
                figures.get("max")]
            lines.append(f"  {who:<24} {figures['count']:>7} "
                         + " ".join("-".rjust(7) if v is None else f"{v:>7.3f}" for v in values)
                         + f" {_percent(figures.get('null_fraction', 0.0)):>7}")
        if output["distance"] is not None:
            lines.append(f"  output distance {output['distance']:.3f} (at quantile "
                         f"{output['at_quantile']}), threshold {output['threshold']:.3f}; null "
                         f"threshold {_percent(output['null_threshold'])}")
    lines.append("")
    if summary["crossed"]:
        lines.append(f"THRESHOLDS CROSSED ({len(summary['crossed'])}):")
        lines += [f"  {line}" for line in summary["crossed"]]
    else:
        lines.append("all within thresholds")
    return "\n".join(lines)
