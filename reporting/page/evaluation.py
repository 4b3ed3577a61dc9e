"""A run's evaluation: the candidate against the served model (baseline), the gate it was
judged by, AUC per slice, calibration, and every slice's metrics."""
from __future__ import annotations

import math

from ctpipe.reporting.contents import Evaluation, RunReport
from ctpipe.reporting.page.markup import Page, esc, fmt, html_table, rounded
from ctpipe.reporting.tfma_results import BASELINE, CANDIDATE, OVERALL

METRICS = (("example_count", "examples"), ("auc", "AUC"), ("binary_accuracy", "accuracy"),
           ("calibration", "calibration (mean prediction / mean label)"))


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
                                       rounded(s.metrics.get(model, {}).get("auc"))
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
                           "points": [[rounded(b.mean_prediction), rounded(b.label_rate)]
                                      for b in bins],
                           "labels": [f"predicted {b.mean_prediction:.2f} "
                                      f"({b.examples:.0f} examples)" for b in bins]})
    if len(series) == 1:
        return '<p class="note">No calibration plot in the evaluation.</p>'
    spec = {"kind": "lines", "title": "Calibration (all eval examples)",
            "x_label": "mean predicted probability (10 bins)", "y_label": "big-tipper rate",
            "x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}, "series": series}
    return page.plot(spec, "Points on the diagonal: predicted probabilities match the observed "
                           "rate. Ranges of fewer than 10 examples are left out.")


def evaluation_section(page: Page, run: RunReport, evaluation: Evaluation) -> str:
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
        rows = [[esc(label)] + [fmt(overall.metrics.get(m, {}).get(key), 0 if key ==
                                    "example_count" else 4) for m in models]
                for key, label in METRICS]
        parts.append(html_table(["overall"] + models, rows, numeric=range(1, len(models) + 1)))
    parts.append('<div class="grid">' + _slice_auc_plots(page, evaluation, models)
                 + _calibration_plot(page, evaluation, models) + "</div>")
    rows = [[esc(s.column), esc(s.value)] + [
        fmt(s.metrics.get(m, {}).get(key), 0 if key == "example_count" else 3)
        for key, _ in METRICS for m in models] for s in evaluation.slices]
    headers = ["slice", "value"] + [f"{label.split(' ')[0]} ({m})" for _, label in METRICS
                                    for m in models]
    parts.append("<details><summary>Every slice's metrics</summary>"
                 + html_table(headers, rows, numeric=range(2, len(headers))) + "</details>")
    return "".join(parts)
