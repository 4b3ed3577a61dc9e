"""`ctpipe report` without a pipeline run: the drawing script in headless Chromium, the
distributions made from statistics, and the errors a user sees.

The report of a real workspace, opened in Chromium, is tested at the end of tests/test_e2e.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from ctpipe.common import properties
from ctpipe.reporting import contents
from ctpipe.reporting.page import page_html
from tests.chromium import DRAWN_PLOTS, load_page

# One plot of every kind the report draws, in the shapes ctpipe.reporting.page writes them.
GOOD_SPECS = {
    "plot-1": {"kind": "histogram", "title": "fare", "x_label": "fare", "y_label": "share",
               "axis": [0, 40], "series": [
                   {"name": "spans 1-3", "style": "reference", "values": [0.5, 0.3, 0.2, 0.0]},
                   {"name": "span 4", "style": "newest", "values": [0.1, 0.2, 0.3, 0.4]}]},
    "plot-2": {"kind": "bars", "title": "payment_type", "percent": True,
               "categories": ["Cash", "Credit Card"], "series": [
                   {"name": "spans 1-3", "style": "reference", "values": [0.7, 0.3]},
                   {"name": "span 4", "style": "newest", "values": [0.4, 0.6]}]},
    "plot-3": {"kind": "bars", "horizontal": True, "title": "drift", "categories": ["a", "b"],
               "thresholds": [0.1, 0.2], "tips": ["infinity_norm", "jensen_shannon_divergence"],
               "series": [{"name": "values", "style": "newest", "values": [0.05, 0.4],
                           "crossed": [False, True]}]},
    "plot-4": {"kind": "lines", "title": "AUC", "x_ticks": [[1, "#1"], [2, "#2"]],
               "series": [{"name": "pushed", "style": "candidate", "points": [[1, 0.9], [2, 0.8]],
                           "flags": [False, True]},
                          {"name": "ideal", "style": "ideal", "points": [[1, 0.8], [2, 0.9]]}]},
}


def _figures(count: int) -> str:
    return "".join(f'<figure class="plot" id="plot-{i}"></figure>' for i in range(1, count + 1))


def test_every_kind_of_plot_is_drawn_in_chromium_without_console_errors(tmp_path):
    page = tmp_path / "good.html"
    page.write_text(page_html("plots", _figures(4), GOOD_SPECS))

    loaded = load_page(page, DRAWN_PLOTS)

    assert loaded.problems == []
    assert loaded.requests == [page.resolve().as_uri()], "the page loads nothing else"
    assert loaded.value["finished"] and loaded.value["specs"] == 4
    for figure in loaded.value["figures"]:
        assert figure["error"] is None and figure["drawn"] > 0, figure
        assert figure["visible_marks"] == figure["drawn"] or figure["kind"] == "bars", figure
        assert figure["title"] and figure["axes"] >= 2 and figure["legend"] >= 1, figure
    drawn = {f["id"]: f["drawn"] for f in loaded.value["figures"]}
    assert drawn == {"plot-1": 7, "plot-2": 4, "plot-3": 2, "plot-4": 4}  # bins, bars, lines+dots


def test_a_plot_that_cannot_be_drawn_and_any_network_use_are_reported(tmp_path):
    """What the browser test relies on: a broken plot, an empty one and a page that reaches
    for the network are all seen."""
    specs = {**GOOD_SPECS,
             "plot-5": {"kind": "pie", "title": "x", "series": []},
             "plot-6": {"kind": "bars", "title": "empty", "categories": ["a"],
                        "series": [{"name": "n", "style": "newest", "values": [None]}]}}
    body = _figures(6) + '<img src="http://127.0.0.1:9/x.png" alt="">'
    page = tmp_path / "bad.html"
    page.write_text(page_html("plots", body, specs))

    loaded = load_page(page, DRAWN_PLOTS)

    assert "console.error: plot plot-5: unknown kind pie" in loaded.problems
    assert "console.error: plot plot-6: nothing to draw" in loaded.problems
    assert any("Content Security Policy" in p and "127.0.0.1:9" in p for p in loaded.problems)
    errors = {f["id"]: f["error"] for f in loaded.value["figures"] if f["error"]}
    assert errors == {"plot-5": "unknown kind pie", "plot-6": "nothing to draw"}


# --- distributions from TFDV statistics --------------------------------------------------------

def _numeric(name: str, buckets: list[tuple[float, float, int]]):
    feature = statistics_pb2.FeatureNameStatistics(type=statistics_pb2.FeatureNameStatistics.FLOAT)
    feature.path.step.append(name)
    values = sum(count for _, _, count in buckets)
    feature.num_stats.common_stats.num_non_missing = values
    feature.num_stats.common_stats.tot_num_values = values
    histogram = feature.num_stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    for low, high, count in buckets:
        histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    return feature


def _categorical(name: str, counts: dict[str, int]):
    feature = statistics_pb2.FeatureNameStatistics(type=statistics_pb2.FeatureNameStatistics.STRING)
    feature.path.step.append(name)
    feature.string_stats.common_stats.num_non_missing = sum(counts.values())
    feature.string_stats.common_stats.tot_num_values = sum(counts.values())
    for rank, (label, count) in enumerate(counts.items()):
        feature.string_stats.rank_histogram.buckets.add(low_rank=rank, high_rank=rank,
                                                        label=label, sample_count=count)
    return feature


def _statistics_artifact(folder: Path, rows: int, features) -> metadata_store_pb2.Artifact:
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = statistics.datasets.add(num_examples=rows)
    dataset.features.extend(features)
    target = folder / f"Split-{properties.SAMPLE_SPLIT}" / properties.STATISTICS_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(statistics.SerializeToString())
    return metadata_store_pb2.Artifact(uri=str(folder))


def test_distributions_share_one_axis_and_say_what_they_leave_out(tmp_path):
    even = [(i, i + 1, 10) for i in range(10)]  # 100 values spread over 0..10
    tail = [(i, i + 1, 10) for i in range(9)] + [(9, 1000, 10)]  # the top tenth up to 1000
    many = {f"company {i:02d}": 3 if i < 10 else 1 for i in range(30)}  # in half of the rows
    reference = _statistics_artifact(tmp_path / "reference", 100, [
        _numeric("fare", even), _numeric("trip_miles", even),
        _categorical("payment_type", {"Cash": 70, "Credit Card": 30}),
        _categorical("company", many)])
    newest = _statistics_artifact(tmp_path / "newest", 100, [
        _numeric("fare", tail), _categorical("trip_miles", {"ten": 100}),
        _categorical("payment_type", {"Cash": 40, "Credit Card": 50, "Mobile": 10}),
        _categorical("company", many)])

    by_name = {d.feature: d for d in contents.distributions(newest, reference)}
    fare = by_name["fare"]
    assert fare.kind == "numeric" and (fare.bins[0], fare.bins[-1]) == (0, 10), \
        "the newest span's long tail is cut at its 90th percentile, the reference ends at 10"
    assert len(fare.bins) == contents.HISTOGRAM_BINS + 1
    assert fare.newest.beyond == pytest.approx(0.1 * 990 / 991)
    for side in (fare.newest, fare.reference):
        assert sum(side.shares) + side.beyond == pytest.approx(1.0)
    assert fare.reference.beyond == 0 and max(fare.reference.shares) == pytest.approx(0.05)

    miles = by_name["trip_miles"]
    assert miles.reference is None and miles.newest.shares == [1.0]
    assert miles.note == "not comparable: numbers in the reference, strings in the newest span"

    payment = by_name["payment_type"]
    assert payment.bins == ["Cash", "Credit Card", "Mobile"], "by the larger share of either side"
    assert payment.newest.shares == [0.4, 0.5, 0.1] and payment.reference.shares == [0.7, 0.3, 0]

    company = by_name["company"]
    assert company.bins == [f"company {i:02d}" for i in range(contents.TOP_CATEGORIES)]
    assert company.newest.with_value == 0.5
    assert company.newest.beyond == pytest.approx(1 - 10 * 0.06 - 2 * 0.02), "the other values"
