"""A run's data checks: anomalies against the curated schema, drift of the newest span against
the reference per feature, and each feature's distribution on both sides."""
from __future__ import annotations

from typing import Any

from ctpipe.reporting.contents import DataCheck, Distribution, RunReport
from ctpipe.reporting.page.markup import Page, esc, rounded, span_ranges


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
                "y_label": "share of values",
                "axis": [rounded(dist.bins[0], 7), rounded(dist.bins[-1], 7)],
                "series": [{"name": name, "style": style,
                            "values": [rounded(v, 3) for v in side.shares]}
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
                        "values": [rounded(v, 3) for v in side.shares] + (
                            [rounded(side.beyond, 3)] if other else [])}
                       for side, name, style in sides]}
    return page.plot(spec, caption)


def _drift_plot(page: Page, findings: list[dict[str, Any]], span: str) -> str:
    features = sorted({f["feature"] for f in findings})
    by_kind = {(f["feature"], f["measure"]): f for f in findings}
    series = []
    for measure, name in (("values", "values"), ("presence", "rows with a value")):
        picked = [by_kind.get((feature, measure)) for feature in features]
        series.append({"name": name, "style": "newest" if measure == "values" else "reference",
                       "values": [rounded(f["score"]) if f else None for f in picked],
                       "crossed": [bool(f and f["crossed"]) for f in picked]})
    def threshold(feature: str) -> float:
        mine = [f for f in findings if f["feature"] == feature]
        values = [f for f in mine if f["measure"] == "values"]
        return rounded((values or mine)[0]["threshold"])

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


def data_section(page: Page, run: RunReport, data: DataCheck) -> str:
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
    reference = f"spans {span_ranges(run.reference_spans)}" if run.reference_spans else ""
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
