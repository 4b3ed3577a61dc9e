"""The workspace report (`ctpipe report`): one HTML page that shows what the continuous-training
loop did and saw, for people who will not read metadata stores.

The page is a single file that needs no network: its style and the script that draws its
plots (`page.css`, `page.js`, inlined) travel with it, the plots' data is JSON
inside it, and a Content-Security-Policy lets the page load nothing else, so it can be mailed,
attached to a ticket or opened from a bucket as it is. The data is read from the workspace
without TensorFlow (`ctpipe.reporting.contents`), so the command takes seconds.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ctpipe.common.files import write_atomically
from ctpipe.reporting.contents import read_workspace
from ctpipe.reporting.lineage import read_lineage
from ctpipe.reporting.status import drift_trend, run_time
from ctpipe.reporting.tfma_results import BASELINE, CANDIDATE, OVERALL

if TYPE_CHECKING:
    from ctpipe.reporting.contents import (
        DataCheck,
        Distribution,
        Evaluation,
        RunReport,
        WorkspaceReport,
    )
    from ctpipe.reporting.status import RunSummary

SCRIPT_FILE = Path(__file__).with_name("page.js")
STYLE_FILE = Path(__file__).with_name("page.css")
METRICS = (("example_count", "examples"), ("auc", "AUC"), ("binary_accuracy", "accuracy"),
           ("calibration", "calibration (mean prediction / mean label)"))


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _r(value: float | None, digits: int = 4) -> float | None:
    """A number as the page stores it (`digits` significant ones), None when not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _fmt(value: float | None, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else "n/a"


def _spans(listed: str | None) -> str:
    """Span numbers as ranges: "1,2,3,5" (as the steps record them) -> "1-3, 5"."""
    numbers = sorted({int(n) for n in (listed or "").split(",") if n.strip()})
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]],
           numeric: Iterable[int] = (), css_class: str = "") -> str:
    """A table of already escaped cells; columns in `numeric` are right-aligned."""
    numeric = set(numeric)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in rows)
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}<tr>{head}</tr>{body}</table>"


class Page:
    """The page being written: HTML fragments, and the spec of every plot they place."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def plot(self, spec: dict[str, Any], caption: str = "") -> str:
        plot_id = f"plot-{len(self.specs) + 1}"
        self.specs[plot_id] = spec
        note = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return f'<figure class="plot" id="{plot_id}">{note}</figure>'


# --- per run: data ---------------------------------------------------------------------------

def _distribution_plot(page: Page, dist: Distribution, newest: str, reference: str,
                       drifted: set[str]) -> str:
    sides = [(side, name, style) for side, name, style in (
        (dist.reference, reference, "reference"), (dist.newest, newest, "newest"))
        if side is not None]
    title = f"{dist.feature}: drifted" if dist.feature in drifted else dist.feature
    caption = "with a value: " + ", ".join(f"{name} {side.with_value:.0%}"
                                           for side, name, _ in sides)
    if dist.note:
        caption += f"; {dist.note}"
    if dist.kind == "numeric":
        spec = {"kind": "histogram", "title": title, "x_label": dist.feature,
                "y_label": "share of values", "axis": [_r(dist.bins[0], 7), _r(dist.bins[-1], 7)],
                "series": [{"name": name, "style": style,
                            "values": [_r(v, 3) for v in side.shares]}
                           for side, name, style in sides]}
        beyond = [f"{name} {side.beyond:.0%}" for side, name, _ in sides if side.beyond >= 0.005]
        if beyond:
            caption += f"; above {dist.bins[-1]:.4g} (off the axis): " + ", ".join(beyond)
        return page.plot(spec, caption)
    categories = list(dist.bins)
    other = any(side.beyond >= 0.005 for side, _, _ in sides)
    spec = {"kind": "bars", "title": title, "x_label": dist.feature, "y_label": "share of values",
            "percent": True, "categories": categories + (["(other)"] if other else []),
            "series": [{"name": name, "style": style,
                        "values": [_r(v, 3) for v in side.shares] + (
                            [_r(side.beyond, 3)] if other else [])}
                       for side, name, style in sides]}
    return page.plot(spec, caption)


def _drift_plot(page: Page, findings: list[dict[str, Any]], span: str) -> str:
    features = sorted({f["feature"] for f in findings})
    by_kind = {(f["feature"], f["measure"]): f for f in findings}
    series = []
    for measure, name in (("values", "values"), ("presence", "rows with a value")):
        picked = [by_kind.get((feature, measure)) for feature in features]
        series.append({"name": name, "style": "newest" if measure == "values" else "reference",
                       "values": [_r(f["score"]) if f else None for f in picked],
                       "crossed": [bool(f and f["crossed"]) for f in picked]})
    def threshold(feature: str) -> float:
        mine = [f for f in findings if f["feature"] == feature]
        values = [f for f in mine if f["measure"] == "values"]
        return _r((values or mine)[0]["threshold"])

    thresholds = [threshold(feature) for feature in features]
    tips = [", ".join(sorted({f"{f['statistic']} ({f['source']})" for f in findings
                              if f["feature"] == feature})) for feature in features]
    spec = {"kind": "bars", "horizontal": True, "width": 560, "left": 150,
            "title": f"Drift of {span} against the reference, per feature",
            "x_label": "score (black mark: the values' threshold; red: crossed)",
            "categories": features, "series": series, "thresholds": thresholds, "tips": tips}
    return page.plot(spec, "Kolmogorov-Smirnov distance for numeric features, L-infinity for "
                           "categorical ones and for the share of rows with a value; thresholds "
                           "calibrated to the sample sizes and the history (docs/drift.md)")


def _data_section(page: Page, run: RunReport, data: DataCheck) -> str:
    parts = ["<h3>Data: the newest span</h3>"]
    if data.anomalies is None:
        parts.append('<p class="note">Not validated against the schema in this run.</p>')
    elif data.anomalies:
        parts.append('<p class="bad">Anomalies against the curated schema:</p><ul class='
                     '"findings">' + "".join(f"<li>{esc(a)}</li>" for a in data.anomalies)
                     + "</ul>")
    else:
        parts.append('<p class="good">No anomalies: the span matches the curated schema.</p>')
    newest = f"span {run.newest_span}" if run.newest_span is not None else "newest span"
    reference = f"spans {_spans(run.reference_spans)}" if run.reference_spans else ""
    drifted: set[str] = set()
    if data.drift is None:
        parts.append('<p class="note">Drift not checked in this run (it stopped before the '
                     "validation gate).</p>")
    elif not data.drift:
        parts.append('<p class="note">Drift not compared: '
                     + ("nothing to compare the first span with." if not reference else
                        "the schema has no drift comparators.") + "</p>")
    else:
        crossed = [f for f in data.drift if f["crossed"]]
        drifted = {f["feature"] for f in crossed}
        verdict = (f'<p class="bad">Drift in {esc(", ".join(sorted(drifted)))}</p>' if crossed
                   else f'<p class="good">No drift: {len(data.drift)} comparisons within their '
                        "thresholds.</p>")
        parts.append(verdict + _drift_plot(page, data.drift, newest))
    if data.distributions is not None:
        where = (f"{reference} (a sample of their training split, the drift reference)"
                 if reference else "no reference (first span)")
        parts.append(f"<h3>Distributions: {esc(newest)} against {esc(where)}</h3>"
                     '<p class="note">Training split of each side; numeric features re-binned '
                     "from TFDV's quantile histograms onto one axis.</p>")
        parts.append('<div class="grid">' + "".join(
            _distribution_plot(page, dist, newest, reference or "reference", drifted)
            for dist in data.distributions) + "</div>")
    return "".join(parts)


# --- per run: evaluation ---------------------------------------------------------------------

def _undefined_auc(values: dict[str, float]) -> bool:
    """A slice without positive labels: TFMA's calibration divides by their sum (NaN), and
    its AUC (0 or 1) means nothing."""
    calibration = values.get("calibration")
    return calibration is not None and not math.isfinite(calibration)


def _slice_auc_plots(page: Page, evaluation: Evaluation, models: list[str]) -> str:
    plots = []
    columns = sorted({s.column for s in evaluation.slices if s.column != OVERALL})
    for column in columns:
        slices = [s for s in evaluation.slices if s.column == column]
        undefined = [s.value for s in slices
                     if any(_undefined_auc(s.metrics.get(m, {})) for m in models)]
        spec = {"kind": "bars", "title": f"AUC by {column}", "x_label": column,
                "y_label": "AUC", "max": 1.0, "width": 560 if len(slices) > 8 else 360,
                "categories": [s.value for s in slices],
                "series": [{"name": model, "style": model,
                            "values": [None if s.value in undefined else
                                       _r(s.metrics.get(model, {}).get("auc"))
                                       for s in slices]} for model in models],
                "tips": [f"{s.metrics.get(CANDIDATE, {}).get('example_count', 0):.0f} examples"
                         for s in slices]}
        caption = ("AUC undefined (no big tippers): " + ", ".join(undefined)) if undefined else ""
        plots.append(page.plot(spec, caption))
    return "".join(plots)


def _calibration_plot(page: Page, evaluation: Evaluation, models: list[str]) -> str:
    series = [{"name": "perfectly calibrated", "style": "ideal", "points": [[0, 0], [1, 1]]}]
    for model in models:
        bins = evaluation.calibration.get(model, [])
        if bins:
            series.append({"name": model, "style": model,
                           "points": [[_r(b.mean_prediction), _r(b.label_rate)] for b in bins],
                           "labels": [f"predicted {b.mean_prediction:.2f} "
                                      f"({b.examples:.0f} examples)" for b in bins]})
    if len(series) == 1:
        return '<p class="note">No calibration plot in the evaluation.</p>'
    spec = {"kind": "lines", "title": "Calibration (all eval examples)",
            "x_label": "mean predicted probability (10 bins)", "y_label": "big-tipper rate",
            "x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}, "series": series}
    return page.plot(spec, "Points on the diagonal: predicted probabilities match the observed "
                           "rate. Ranges of fewer than 10 examples are left out.")


def _evaluation_section(page: Page, run: RunReport, evaluation: Evaluation) -> str:
    models = [m for m in (CANDIDATE, BASELINE)
              if any(m in s.metrics for s in evaluation.slices)]
    overall = next((s for s in evaluation.slices if s.column == OVERALL), None)
    parts = ["<h3>Evaluation: candidate against the served model (baseline)</h3>"]
    if BASELINE not in models:
        parts.append('<p class="note">No baseline: nothing was served yet, so the candidate '
                     "was judged by the AUC floor alone.</p>")
    gate = []
    if evaluation.min_auc is not None:
        gate.append(f"AUC at least {evaluation.min_auc:g}")
    if evaluation.max_auc_loss is not None and BASELINE in models:
        gate.append(f"at most {evaluation.max_auc_loss:g} below the baseline's")
    blessed = run.summary.blessed
    verdict = {True: '<span class="good">blessed</span>',
               False: '<span class="bad">not blessed</span>', None: "no blessing recorded"}
    parts.append(f"<p>Gate: {esc(', '.join(gate) or 'none recorded')}; "
                 f"{verdict[blessed]}.</p>")
    if overall is not None:
        rows = [[esc(label)] + [_fmt(overall.metrics.get(m, {}).get(key), 0 if key ==
                                     "example_count" else 4) for m in models]
                for key, label in METRICS]
        parts.append(_table(["overall"] + models, rows, numeric=range(1, len(models) + 1)))
    parts.append('<div class="grid">' + _slice_auc_plots(page, evaluation, models)
                 + _calibration_plot(page, evaluation, models) + "</div>")
    rows = [[esc(s.column), esc(s.value)] + [
        _fmt(s.metrics.get(m, {}).get(key), 0 if key == "example_count" else 3)
        for key, _ in METRICS for m in models] for s in evaluation.slices]
    headers = ["slice", "value"] + [f"{label.split(' ')[0]} ({m})" for _, label in METRICS
                                    for m in models]
    parts.append("<details><summary>Every slice's metrics</summary>"
                 + _table(headers, rows, numeric=range(2, len(headers))) + "</details>")
    return "".join(parts)


# --- runs ------------------------------------------------------------------------------------

def _chips(nodes: dict[str, str]) -> str:
    return "".join(f'<span class="chip {esc(state)}">{esc(node)}: {esc(state)}</span>'
                   for node, state in nodes.items())


def _concept_line(concept: dict[str, Any] | None) -> str:
    if not concept:
        return "not scored"
    if not concept.get("served_version"):
        return "no served model to score yet"
    verdict = "concept drift" if concept.get("concept_drift") else "no concept drift"
    return (f"served version {concept['served_version']}: AUC {_fmt(concept.get('auc'))} on span "
            f"{concept.get('span')}, {_fmt(concept.get('auc_when_pushed'))} when pushed: "
            f"{verdict}")


def _state(summary: RunSummary) -> str:
    failed = [node for node, state in summary.nodes.items() if state == "failed"]
    if failed:
        return f"failed at {', '.join(failed)}"
    if summary.nodes and set(summary.nodes.values()) == {"cached"}:
        return f"{summary.state}, all cached"
    return summary.state


def _run_section(page: Page, run: RunReport, anchors: dict[str, str], is_open: bool) -> str:
    summary = run.summary
    title = (f"Run {run_time(summary.run_id)}: {_state(summary)}, spans "
             f"{run.window or summary.spans}"
             + (f", pushed version {summary.pushed_version}" if summary.pushed_version else ""))
    parts = [f'<details class="run" id="{anchors[summary.run_id]}"'
             f'{" open" if is_open else ""}><summary>{esc(title)}</summary>',
             f"<p>{_chips(summary.nodes)}</p>"]
    if run.window:
        parts.append(f"<p>Window: spans {esc(run.window)} (newest {run.newest_span}). Ingested "
                     f"in this run: {esc(_spans(run.ingested) or 'none')}; referred to where "
                     f"earlier runs stored them: {esc(_spans(run.reused) or 'none')}.</p>")
    parts.append(f"<p>Concept drift: {esc(_concept_line(run.concept))}.</p>")
    if run.data is not None:
        parts.append(_data_section(page, run, run.data))
    elif run.data_shown_in is not None:
        parts.append(f'<p class="note">Data checks: the same results as <a href="#'
                     f'{anchors[run.data_shown_in]}">run {esc(run_time(run.data_shown_in))}</a> '
                     "(cached).</p>")
    else:
        parts.append('<p class="note">No data was read in this run.</p>')
    if run.evaluation is not None:
        parts.append(_evaluation_section(page, run, run.evaluation))
    elif run.evaluation_shown_in is not None:
        parts.append(f'<p class="note">Evaluation: the same results as <a href="#'
                     f'{anchors[run.evaluation_shown_in]}">run '
                     f"{esc(run_time(run.evaluation_shown_in))}</a> (cached).</p>")
    else:
        parts.append('<p class="note">No evaluation in this run.</p>')
    return "".join(parts) + "</details>"


def _overview(report: WorkspaceReport, anchors: dict[str, str]) -> str:
    evaluations = {r.summary.run_id: r.evaluation for r in report.runs if r.evaluation}
    checks = {r.summary.run_id: r.data for r in report.runs if r.data}
    rows = []
    for run in reversed(report.runs):
        summary = run.summary
        data = checks.get(run.data_shown_in or "")
        drift = "not checked"
        if data is not None and data.drift is not None:
            drift = ", ".join(sorted({f["feature"] for f in data.drift if f["crossed"]})) or "none"
        anomalies = "-" if data is None or data.anomalies is None else (
            str(len(data.anomalies)) if data.anomalies else "none")
        evaluation = evaluations.get(run.evaluation_shown_in or "")
        overall = next((s for s in evaluation.slices if s.column == OVERALL), None) if (
            evaluation) else None
        aucs = (" / ".join(_fmt(overall.metrics.get(m, {}).get("auc"))
                           for m in (CANDIDATE, BASELINE) if m in overall.metrics)
                if overall else "-")
        state = (f'<span class="bad">{esc(_state(summary))}</span>' if summary.state == "failed"
                 else esc(_state(summary)))
        concept = "-" if not run.concept or not run.concept.get("served_version") else (
            '<span class="bad">yes</span>' if run.concept.get("concept_drift") else "no")
        rows.append([f'<a href="#{anchors[summary.run_id]}">{esc(run_time(summary.run_id))}</a>',
                     state,
                     esc(run.window or "-"), esc(_spans(run.ingested) or "-"),
                     esc(anomalies), esc(drift), concept, esc(aucs),
                     {True: "yes", False: "no", None: "-"}[summary.blessed],
                     esc(summary.pushed_version or "-")])
    return _table(["run", "state", "spans", "ingested", "anomalies", "data drift",
                   "concept drift", "AUC candidate / baseline", "blessed", "pushed"], rows,
                  css_class="runs")


# --- history ---------------------------------------------------------------------------------

def _push_history(page: Page, report: WorkspaceReport,
                  anchors: dict[str, str]) -> tuple[str, str]:
    """The plot of the AUC at each push, and the table of pushed versions."""
    recorded = [p for p in report.pushes if p.record and "auc" in p.record]
    plot = ""
    if recorded:
        labels = [f"#{i + 1} version {p.version}" for i, p in enumerate(recorded)]
        series = [{"name": "pushed version", "style": CANDIDATE, "labels": labels,
                   "points": [[i + 1, _r(p.record["auc"])] for i, p in enumerate(recorded)]}]
        with_baseline = [(i, p) for i, p in enumerate(recorded) if "baseline_auc" in p.record]
        if with_baseline:
            series.append({"name": "the model it replaced (baseline)", "style": BASELINE,
                           "points": [[i + 1, _r(p.record["baseline_auc"])]
                                      for i, p in with_baseline],
                           "labels": [labels[i] for i, _ in with_baseline]})
        plot = page.plot({"kind": "lines", "title": "AUC across pushed versions",
                          "x_label": "pushed version (oldest to newest)", "y_label": "AUC",
                          "width": 560, "x_ticks": [[i + 1, f"#{i + 1}"]
                                                    for i in range(len(recorded))],
                          "series": series},
                         "The Evaluator's AUC on the eval examples of the run that pushed the "
                         "version, and the AUC of the model it replaced on the same examples.")
    rows = []
    for push in report.pushes:
        record, card = push.record or {}, push.card or {}
        pushed_at = (dt.datetime.fromtimestamp(record["pushed_at"], dt.timezone.utc)
                     .strftime("%Y-%m-%d %H:%M:%S UTC") if "pushed_at" in record else "-")
        rows.append([f"#{recorded.index(push) + 1}" if push in recorded else "-",
                     esc(push.version), esc(pushed_at),
                     f'<a href="#{anchors[push.run_id]}">{esc(run_time(push.run_id))}</a>',
                     esc(push.window or "-"),
                     esc(f"{card['training']}, {card['origin']}" if card else "-"),
                     _fmt(record.get("auc")),
                     _fmt(record.get("baseline_auc")),
                     _fmt(record.get("eval_predictions", {}).get("mean"), 3), esc(push.note)])
    table = (f"<details><summary>Pushed versions ({len(rows)})</summary>"
             + _table(["#", "version", "pushed at", "run", "trained on spans", "training",
                       "AUC", "baseline AUC", "mean prediction (eval)", "note"], rows,
                      numeric=(6, 7, 8)) + "</details>"
             if rows else '<p class="note">Nothing pushed yet.</p>')
    return plot, table


def _concept_history(page: Page, report: WorkspaceReport) -> tuple[str, str]:
    """The plot of the served model's AUC on each new span, and the table of every span."""
    scored = [h for h in report.span_history if h.served_version and h.auc is not None]
    plot = ""
    if scored:
        labels = [f"span {h.span}, version {h.served_version}" for h in scored]
        series = [{"name": "served model on the new span", "style": CANDIDATE, "labels": labels,
                   "points": [[h.span, _r(h.auc)] for h in scored],
                   "flags": [h.concept_drift for h in scored]}]
        then = [(h, label) for h, label in zip(scored, labels) if h.auc_when_pushed is not None]
        if then:
            series.append({"name": "the same model when pushed", "style": BASELINE,
                           "points": [[h.span, _r(h.auc_when_pushed)] for h, _ in then],
                           "labels": [label for _, label in then]})
        limit = (f" Red points: concept drift (a fall of more than {report.max_auc_drop:g})."
                 if report.max_auc_drop is not None else "")
        plot = page.plot({"kind": "lines", "title": "AUC on each new span vs when pushed",
                          "x_label": "span", "y_label": "AUC", "width": 560,
                          "x_ticks": [[h.span, str(h.span)] for h in scored], "series": series},
                         "The served model scored on each span before training on it." + limit)
    rows = [[str(h.span), esc(h.served_version or "-"), _fmt(h.auc), _fmt(h.auc_when_pushed),
             _fmt(h.auc_when_pushed - h.auc) if h.auc is not None and h.auc_when_pushed
             is not None else "n/a",
             ('<span class="bad">yes</span>' if h.concept_drift else "no")
             if h.served_version else "no served model yet",
             esc(h.drifted.replace(",", ", ") or "none")]
            for h in report.span_history]
    table = (f"<details><summary>Concept and data drift by span ({len(rows)})</summary>"
             + _table(["span", "served version", "AUC on the span", "AUC when pushed", "drop",
                       "concept drift", "data drift"], rows, numeric=(2, 3, 4)) + "</details>"
             if rows else '<p class="note">No span scored yet.</p>')
    return plot, table


def _drift_trend(report: WorkspaceReport) -> str:
    """The drift scores of the last spans over their thresholds, the measures nearest them."""
    spans, rows = drift_trend(report.span_history)
    if not spans:
        return '<p class="note">No drift scores recorded yet.</p>'
    cells = [[esc(label)] + ["-" if r is None else
                             (f'<span class="bad">{r:.2f}</span>' if r > 1 else f"{r:.2f}")
                             for r in ratios] for label, ratios in rows]
    return ("<details open><summary>Drift scores by span: score / threshold, above 1 is "
            "drift (docs/drift.md)</summary>"
            + _table(["measure"] + [f"span {span}" for span in spans], cells,
                     numeric=tuple(range(1, len(spans) + 1))) + "</details>")


def _history(page: Page, report: WorkspaceReport, anchors: dict[str, str]) -> str:
    pushes_plot, pushes_table = _push_history(page, report, anchors)
    concept_plot, concept_table = _concept_history(page, report)
    return (f'<div class="grid">{pushes_plot}{concept_plot}</div>{pushes_table}{concept_table}'
            f"{_drift_trend(report)}")


# --- monitor ---------------------------------------------------------------------------------

def _monitor(page: Page, report: WorkspaceReport) -> str:
    summary = report.monitor
    if summary is None:
        return (f'<p class="note">No monitor summary saved: {esc(report.monitor_path)} does not '
                "exist. <code>ctpipe monitor --logs PREFIX --workspace WS</code> saves one "
                "(docs/monitoring.md).</p>")
    status = summary.get("status")
    parts = [f"<p>Latest summary of <code>ctpipe monitor</code>, {esc(summary.get('created_at'))}"
             f", model {esc(summary.get('model_name'))}: "
             + ('<span class="good">every threshold held</span>' if status == "ok" else
                '<span class="bad">thresholds crossed</span>') + ".</p>"]
    if summary.get("crossed"):
        parts.append('<ul class="findings">' + "".join(
            f'<li class="bad">{esc(line)}</li>' for line in summary["crossed"]) + "</ul>")
    for version in summary.get("versions", []):
        parts.append(f"<h3>Version {esc(version.get('version'))}: {version.get('requests', 0)} "
                     f"requests, {version.get('examples', 0)} examples</h3>")
        if not version.get("compared"):
            parts.append(f'<p class="note">Not compared: {esc(version.get("reason", ""))}</p>')
            continue
        features = version.get("features", [])
        plots = []
        if features:
            names = [f["feature"] for f in features]
            series = [{"name": name, "style": style,
                       "values": [_r(f.get(key)) for f in features],
                       "crossed": [f.get(key) is not None and f[key] > f["threshold"]
                                   for f in features]}
                      for key, name, style in (("distance", "values", "newest"),
                                               ("presence_distance", "rows with a value",
                                                "reference"))]
            plots.append(page.plot({
                "kind": "bars", "horizontal": True, "width": 560, "left": 150,
                "title": "Skew of served requests against training, per feature",
                "x_label": "distance (black mark: threshold; red: crossed)",
                "categories": names, "series": series,
                "thresholds": [_r(f["threshold"]) for f in features],
                "tips": [f["comparator"] for f in features]}))
        output = version.get("output") or {}
        served, evaluated = output.get("serving", {}), output.get("eval", {})
        lines = [{"name": name, "style": style, "points": sorted(
                    [float(q), _r(v)] for q, v in side.get("quantiles", {}).items())}
                 for side, name, style in ((evaluated, "eval split at the push", BASELINE),
                                           (served, "served requests", CANDIDATE))
                 if side.get("quantiles")]
        if lines:
            plots.append(page.plot({
                "kind": "lines", "title": "Predicted probability: quantiles",
                "x_label": "quantile", "y_label": "predicted probability",
                "x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}, "series": lines},
                f"output distance {_fmt(output.get('distance'), 3)} (threshold "
                f"{_fmt(output.get('threshold'), 3)})"))
        parts.append('<div class="grid">' + "".join(plots) + "</div>")
        rows = [[esc(f["feature"]), esc(f["comparator"]), _fmt(f.get("distance"), 3),
                 _fmt(f.get("presence_distance"), 3), _fmt(f.get("threshold"), 3),
                 "{:.1%} / {:.1%}".format(f.get("missing", {}).get("serving", 0),
                                          f.get("missing", {}).get("training", 0)),
                 '<span class="bad">crossed</span>' if f.get("crossed") else "ok"]
                for f in features]
        rows += [[esc(name), "predictions", "-", "-", "-",
                  f"null {side.get('null_fraction', 0):.1%}",
                  f"mean {_fmt(side.get('mean'), 3)}, std {_fmt(side.get('std'), 3)}, "
                  f"{side.get('count', 0)} predictions"]
                 for name, side in (("served", served), ("eval split", evaluated)) if side]
        parts.append(f"<details><summary>Every feature and the predictions ({len(rows)} rows)"
                     "</summary>" + _table(["feature", "comparator", "distance", "presence",
                                            "threshold", "missing serving / training", ""],
                                           rows, numeric=(2, 3, 4)) + "</details>")
    return "".join(parts)


# --- the page --------------------------------------------------------------------------------

def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _lineage(lines: list[str] | None) -> str:
    if not lines:
        return '<p class="note">Nothing pushed yet.</p>'
    return ("<details open><summary>Lineage of the newest pushed version (ctpipe lineage)"
            "</summary><pre>" + esc("\n".join(lines)) + "</pre></details>")


def render(report: WorkspaceReport, generated_at: dt.datetime,
           lineage: list[str] | None = None) -> tuple[str, int]:
    """The whole page as one string, and how many plots it holds; `lineage`: the newest
    pushed version's lineage lines."""
    page = Page()
    anchors = {run.summary.run_id: f"run-{i + 1}" for i, run in enumerate(report.runs)}
    newest = report.runs[-1].summary
    served = report.pushes[-1].version if report.pushes else "none"
    body = [
        "<h1>Continuous training report</h1>",
        f'<p class="meta">Workspace {esc(report.workspace)} · generated '
        f"{esc(generated_at.strftime('%Y-%m-%d %H:%M:%S %Z'))} · {len(report.runs)} runs · "
        f"latest run {esc(newest.state)} · newest pushed version {esc(served)}</p>",
        '<nav><a href="#overview">Runs</a><a href="#lineage">Lineage</a>'
        '<a href="#history">Model over time</a><a href="#monitor">Serving monitor</a>'
        '<a href="#details">Run details</a></nav>',
        '<h2 id="overview">Runs (newest first)</h2>', _overview(report, anchors),
        '<h2 id="lineage">Lineage of the served version</h2>', _lineage(lineage),
        '<h2 id="history">Model over time</h2>', _history(page, report, anchors),
        '<h2 id="monitor">Serving monitor</h2>', _monitor(page, report),
        '<h2 id="details">Run details (newest first)</h2>',
    ]
    # Open: the newest run, and the newest that evaluated a model (not cached).
    opened = {report.runs[-1].summary.run_id} | {
        next((r.summary.run_id for r in reversed(report.runs) if r.evaluation), "")}
    body += [_run_section(page, run, anchors, run.summary.run_id in opened)
             for run in reversed(report.runs)]
    return (page_html(f"ctpipe report: {report.workspace.name}", "".join(body), page.specs),
            len(page.specs))


def page_html(title: str, body: str, specs: dict[str, dict[str, Any]]) -> str:
    """A standalone page: `body` (HTML), the plot specs its figures name, the style and the
    drawing script inline, and a policy that lets it load nothing else."""
    script, style = SCRIPT_FILE.read_text(), STYLE_FILE.read_text()
    # JSON in a script element: "<" escaped so that no text in it can end the element.
    data = json.dumps(specs, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    policy = (f"default-src 'none'; script-src {_csp_hash(script)}; "
              f"style-src {_csp_hash(style)}; img-src data:")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{style}</style></head><body>{body}"
            f'<script type="application/json" id="plot-specs">{data}</script>'
            f"<script>{script}</script></body></html>\n")


def write_report(workspace: Path, out: Path) -> tuple[int, int]:
    """Writes the page for `workspace` to `out` (atomically); returns (runs, plots)."""
    report = read_workspace(workspace)
    lineage = (read_lineage(workspace, report.pushes[-1].version).lines() if report.pushes
               else None)
    text, plots = render(report, dt.datetime.now(dt.timezone.utc), lineage)
    write_atomically(str(out), text)
    return len(report.runs), plots
