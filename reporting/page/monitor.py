"""The serving monitor: the latest summary `ctpipe monitor` saved, per served version the skew
of its requests against training and its predictions against the eval split."""
from __future__ import annotations

from ctpipe.reporting.contents import WorkspaceReport
from ctpipe.reporting.page.markup import Page, esc, fmt, html_table, rounded
from ctpipe.reporting.tfma_results import BASELINE, CANDIDATE


def monitor_section(page: Page, report: WorkspaceReport) -> str:
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
                       "values": [rounded(f.get(key)) for f in features],
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
                "thresholds": [rounded(f["threshold"]) for f in features],
                "tips": [f["comparator"] for f in features]}))
        output = version.get("output") or {}
        served, evaluated = output.get("serving", {}), output.get("eval", {})
        lines = [{"name": name, "style": style, "points": sorted(
                    [float(q), rounded(v)] for q, v in side.get("quantiles", {}).items())}
                 for side, name, style in ((evaluated, "eval split at the push", BASELINE),
                                           (served, "served requests", CANDIDATE))
                 if side.get("quantiles")]
        if lines:
            plots.append(page.plot({
                "kind": "lines", "title": "Predicted probability: quantiles",
                "x_label": "quantile", "y_label": "predicted probability",
                "x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}, "series": lines},
                f"output distance {fmt(output.get('distance'), 3)} (threshold "
                f"{fmt(output.get('threshold'), 3)})"))
        parts.append('<div class="grid">' + "".join(plots) + "</div>")
        rows = [[esc(f["feature"]), esc(f["comparator"]), fmt(f.get("distance"), 3),
                 fmt(f.get("presence_distance"), 3), fmt(f.get("threshold"), 3),
                 "{:.1%} / {:.1%}".format(f.get("missing", {}).get("serving", 0),
                                          f.get("missing", {}).get("training", 0)),
                 '<span class="bad">crossed</span>' if f.get("crossed") else "ok"]
                for f in features]
        rows += [[esc(name), "predictions", "-", "-", "-",
                  f"null {side.get('null_fraction', 0):.1%}",
                  f"mean {fmt(side.get('mean'), 3)}, std {fmt(side.get('std'), 3)}, "
                  f"{side.get('count', 0)} predictions"]
                 for name, side in (("served", served), ("eval split", evaluated)) if side]
        parts.append(f"<details><summary>Every feature and the predictions ({len(rows)} rows)"
                     "</summary>" + html_table(["feature", "comparator", "distance",
                                                "presence", "threshold",
                                                "missing serving / training", ""],
                                               rows, numeric=(2, 3, 4)) + "</details>")
    return "".join(parts)
