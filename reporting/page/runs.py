"""The runs: the overview table (one row a run) and each run's section, which holds its data
checks and evaluation or points to the run whose cached results they are."""
from __future__ import annotations

from typing import Any

from ctpipe.reporting.contents import RunReport, WorkspaceReport
from ctpipe.reporting.page.data import data_section
from ctpipe.reporting.page.evaluation import evaluation_section
from ctpipe.reporting.page.markup import Page, esc, fmt, html_table, span_ranges
from ctpipe.reporting.status import RunSummary, run_time
from ctpipe.reporting.tfma_results import BASELINE, CANDIDATE, OVERALL


def _chips(nodes: dict[str, str]) -> str:
    return "".join(f'<span class="chip {esc(state)}">{esc(node)}: {esc(state)}</span>'
                   for node, state in nodes.items())


def _concept_line(concept: dict[str, Any] | None) -> str:
    if not concept:
        return "not scored"
    if not concept.get("served_version"):
        return "no served model to score yet"
    verdict = "concept drift" if concept.get("concept_drift") else "no concept drift"
    return (f"served version {concept['served_version']}: AUC {fmt(concept.get('auc'))} on span "
            f"{concept.get('span')}, {fmt(concept.get('auc_when_pushed'))} when pushed: "
            f"{verdict}")


def _state(summary: RunSummary) -> str:
    failed = [node for node, state in summary.nodes.items() if state == "failed"]
    if failed:
        return f"failed at {', '.join(failed)}"
    if summary.nodes and set(summary.nodes.values()) == {"cached"}:
        return f"{summary.state}, all cached"
    return summary.state


def run_section(page: Page, run: RunReport, anchors: dict[str, str], is_open: bool) -> str:
    summary = run.summary
    title = (f"Run {run_time(summary.run_id)}: {_state(summary)}, spans "
             f"{run.window or summary.spans}"
             + (f", pushed version {summary.pushed_version}" if summary.pushed_version else ""))
    parts = [f'<details class="run" id="{anchors[summary.run_id]}"'
             f'{" open" if is_open else ""}><summary>{esc(title)}</summary>',
             f"<p>{_chips(summary.nodes)}</p>"]
    if run.window:
        parts.append(f"<p>Window: spans {esc(run.window)} (newest {run.newest_span}). Ingested "
                     f"in this run: {esc(span_ranges(run.ingested) or 'none')}; referred to where "
                     f"earlier runs stored them: {esc(span_ranges(run.reused) or 'none')}.</p>")
    parts.append(f"<p>Concept drift: {esc(_concept_line(run.concept))}.</p>")
    if run.data is not None:
        parts.append(data_section(page, run, run.data))
    elif run.data_shown_in is not None:
        parts.append(f'<p class="note">Data checks: the same results as <a href="#'
                     f'{anchors[run.data_shown_in]}">run {esc(run_time(run.data_shown_in))}</a> '
                     "(cached).</p>")
    else:
        parts.append('<p class="note">No data was read in this run.</p>')
    if run.evaluation is not None:
        parts.append(evaluation_section(page, run, run.evaluation))
    elif run.evaluation_shown_in is not None:
        parts.append(f'<p class="note">Evaluation: the same results as <a href="#'
                     f'{anchors[run.evaluation_shown_in]}">run '
                     f"{esc(run_time(run.evaluation_shown_in))}</a> (cached).</p>")
    else:
        parts.append('<p class="note">No evaluation in this run.</p>')
    return "".join(parts) + "</details>"


def overview(report: WorkspaceReport, anchors: dict[str, str]) -> str:
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
        aucs = (" / ".join(fmt(overall.metrics.get(m, {}).get("auc"))
                           for m in (CANDIDATE, BASELINE) if m in overall.metrics)
                if overall else "-")
        state = (f'<span class="bad">{esc(_state(summary))}</span>' if summary.state == "failed"
                 else esc(_state(summary)))
        concept = "-" if not run.concept or not run.concept.get("served_version") else (
            '<span class="bad">yes</span>' if run.concept.get("concept_drift") else "no")
        rows.append([f'<a href="#{anchors[summary.run_id]}">{esc(run_time(summary.run_id))}</a>',
                     state,
                     esc(run.window or "-"), esc(span_ranges(run.ingested) or "-"),
                     esc(anomalies), esc(drift), concept, esc(aucs),
                     {True: "yes", False: "no", None: "-"}[summary.blessed],
                     esc(summary.pushed_version or "-")])
    return html_table(["run", "state", "spans", "ingested", "anomalies", "data drift",
                       "concept drift", "AUC candidate / baseline", "blessed", "pushed"], rows,
                      css_class="runs")
