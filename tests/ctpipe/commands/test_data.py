"""`ctpipe data prepare`: the taxi trips as span folders, as a user runs it."""
from __future__ import annotations

import json

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_names_the_output_and_the_choices(ctpipe):
    shown = ctpipe("data", "prepare", "--help")
    assert (shown.status, shown.err) == (0, "")
    for text in ("--out", "--source", "--span-trips", "--format {csv,parquet}"):
        assert text in shown.out
    assert_one_line_error(ctpipe("data"), "the following arguments are required: data_command")


def test_prepare_prints_each_span_and_a_second_run_changes_nothing(ctpipe, small_source,
                                                                   tmp_path):
    out = tmp_path / "spans"
    prepared = ctpipe("data", "prepare", "--out", out, "--source", small_source)
    assert (prepared.status, prepared.err) == (0, "")
    manifest = json.loads((out / "manifest.json").read_text())
    lines = prepared.out.splitlines()
    assert lines == [f"span-{s['number']}: {s['quarter']}, {s['rows']} trips"
                     for s in manifest["spans"]] + [f"{len(manifest['spans'])} spans in {out}"]
    # small_source: every 4th trip of 2013-2014, eight quarters
    assert [s["quarter"] for s in manifest["spans"]] == [
        f"{year}-Q{quarter}" for year in (2013, 2014) for quarter in (1, 2, 3, 4)]
    for span in manifest["spans"]:
        written = (out / f"span-{span['number']}" / "data.csv").read_text().splitlines()
        assert len(written) == span["rows"] + 1, "a header and the trips"
    before = tree(out)
    assert ctpipe("data", "prepare", "--out", out, "--source", small_source).out == prepared.out
    assert tree(out) == before


def test_bad_input_is_named_and_nothing_is_written(ctpipe, small_source, tmp_path):
    out = tmp_path / "spans"
    assert_one_line_error(ctpipe("data", "prepare", "--out", out, "--source",
                                 tmp_path / "trips.csv"),
                          f"source file not found: {tmp_path / 'trips.csv'}")
    assert_one_line_error(ctpipe("data", "prepare", "--out", out, "--span-trips", "-5"),
                          "span trips must be 0 (as shipped) or positive, got -5")
    assert_one_line_error(ctpipe("data", "prepare", "--out", out, "--format", "xml"),
                          "argument --format: invalid choice: 'xml'")
    (tmp_path / "trips.csv").write_text("fare,tips\n1.0,0.5\n")
    assert_one_line_error(ctpipe("data", "prepare", "--out", out, "--source",
                                 tmp_path / "trips.csv"),
                          "lacks required column(s): ")
    assert [path.name for path in tmp_path.iterdir()] == ["trips.csv"]


def test_a_folder_of_something_else_is_not_overwritten(ctpipe, small_source, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_one_line_error(ctpipe("data", "prepare", "--out", tmp_path, "--source", small_source),
                          f"{tmp_path} is not empty and holds no manifest.json: refusing to "
                          "overwrite it")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
