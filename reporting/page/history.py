"""The model over time: the AUC of every pushed version, the served model's AUC on each new
span (concept drift), and the drift scores of the last spans."""
from __future__ import annotations

import datetime as dt

from ctpipe.reporting.contents import WorkspaceReport
from ctpipe.reporting.page.markup import Page, esc, fmt, html_table, rounded
from ctpipe.reporting.status import drift_trend, run_time
from ctpipe.reporting.tfma_results import BASELINE, CANDIDATE


def _push_history(page: Page, report: WorkspaceReport,
                  anchors: dict[str, str]) -> tuple[str, str]:
    """The plot of the AUC at each push, and the table of pushed versions."""
    recorded = [p for p in report.pushes if p.record and "auc" in p.record]
    plot = ""
    if recorded:
        labels = [f"#{i + 1} version {p.version}" for i, p in enumerate(recorded)]
        series = [{"name": "pushed version", "style": CANDIDATE, "labels": labels,
                   "points": [[i + 1, rounded(p.record["auc"])] for i, p in enumerate(recorded)]}]
        with_baseline = [(i, p) for i, p in enumerate(recorded) if "baseline_auc" in p.record]
        if with_baseline:
            series.append({"name": "the model it replaced (baseline)", "style": BASELINE,
                           "points": [[i + 1, rounded(p.record["baseline_auc"])]
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
                     fmt(record.get("auc")),
                     fmt(record.get("baseline_auc")),
                     fmt(record.get("eval_predictions", {}).get("mean"), 3), esc(push.note)])
    table = (f"<details><summary>Pushed versions ({len(rows)})</summary>"
             + html_table(["#", "version", "pushed at", "run", "trained on spans",
                           "training", "AUC", "baseline AUC", "mean prediction (eval)", "note"],
                          rows, numeric=(6, 7, 8)) + "</details>"
             if rows else '<p class="note">Nothing pushed yet.</p>')
    return plot, table


def _concept_history(page: Page, report: WorkspaceReport) -> tuple[str, str]:
    """The plot of the served model's AUC on each new span, and the table of every span."""
    scored = [h for h in report.span_history if h.served_version and h.auc is not None]
    plot = ""
    if scored:
        labels = [f"span {h.span}, version {h.served_version}" for h in scored]
        series = [{"name": "served model on the new span", "style": CANDIDATE, "labels": labels,
                   "points": [[h.span, rounded(h.auc)] for h in scored],
                   "flags": [h.concept_drift for h in scored]}]
        then = [(h, label) for h, label in zip(scored, labels) if h.auc_when_pushed is not None]
        if then:
            series.append({"name": "the same model when pushed", "style": BASELINE,
                           "points": [[h.span, rounded(h.auc_when_pushed)] for h, _ in then],
                           "labels": [label for _, label in then]})
        limit = (f" Red points: concept drift (a fall of more than {report.max_auc_drop:g})."
                 if report.max_auc_drop is not None else "")
        plot = page.plot({"kind": "lines", "title": "AUC on each new span vs when pushed",
                          "x_label": "span", "y_label": "AUC", "width": 560,
                          "x_ticks": [[h.span, str(h.span)] for h in scored], "series": series},
                         "The served model scored on each span before training on it." + limit)
    rows = [[str(h.span), esc(h.served_version or "-"), fmt(h.auc), fmt(h.auc_when_pushed),
             fmt(h.auc_when_pushed - h.auc) if h.auc is not None and h.auc_when_pushed
             is not None else "n/a",
             ('<span class="bad">yes</span>' if h.concept_drift else "no")
             if h.served_version else "no served model yet",
             esc(h.drifted.replace(",", ", ") or "none")]
            for h in report.span_history]
    table = (f"<details><summary>Concept and data drift by span ({len(rows)})</summary>"
             + html_table(["span", "served version", "AUC on the span", "AUC when pushed",
                           "drop", "concept drift", "data drift"], rows, numeric=(2, 3, 4))
             + "</details>"
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
            + html_table(["measure"] + [f"span {span}" for span in spans], cells,
                         numeric=tuple(range(1, len(spans) + 1))) + "</details>")


def history_section(page: Page, report: WorkspaceReport, anchors: dict[str, str]) -> str:
    pushes_plot, pushes_table = _push_history(page, report, anchors)
    concept_plot, concept_table = _concept_history(page, report)
    return (f'<div class="grid">{pushes_plot}{concept_plot}</div>{pushes_table}{concept_table}'
            f"{_drift_trend(report)}")
