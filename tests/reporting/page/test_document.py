"""The standalone page (`ctpipe.reporting.page.document`) in headless Chromium: every kind of
plot drawn by its script, and a broken plot or any network use reported.

The report of a real workspace, opened in Chromium, is tested at the end of tests/test_e2e.py.
"""
from __future__ import annotations

from ctpipe.reporting.page.document import page_html
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
