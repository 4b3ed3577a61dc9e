"""`ctpipe score` as a user runs it: a pushed version scoring a CSV of trips in Beam (in this
process), what it prints and publishes, and the refusals that publish nothing. The scoring
job, the gate and the served-model source: tests/scoring/."""
from __future__ import annotations

import csv
import json

import pytest

from tests.ctpipe.conftest import assert_one_line_error, tree
from tests.serving.conftest import push_version, reference_scores  # noqa: F401


def test_help_names_the_model_sources_and_the_gate(ctpipe):
    shown = ctpipe("score", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--model-dir", "--workspace", "--server", "--input", "--output",
                 "--max-nan-rate", "--min-rows", "--keep", "--beam-arg"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("score", "--model-dir", "m", "--server", "h:1", "--input", "x",
                                 "--output", "y"),
                          "argument --server: not allowed with argument --model-dir")


def test_ctpipe_score_names_what_is_wrong(tmp_path, ctpipe):
    """Moved from tests/scoring/test_scoring.py, in this process instead of its own."""
    result = ctpipe("score", "--workspace", tmp_path, "--input", tmp_path, "--output",
                    tmp_path / "out")
    assert result.status == 1
    assert result.err.strip() == (f"ctpipe: no pushed versions: {tmp_path}/serving/big_tipper "
                                  "does not exist")


@pytest.mark.parametrize(("flags", "named"), [
    ([], "give the model: --model-dir DIR, --workspace WS or --server HOST:PORT"),
    (["--model-dir", "{models}/7", "--label", "canary"], "--label needs --server"),
    (["--model-dir", "{models}"], "no SavedModel in {models} (saved_model.pb missing)"),
    (["--workspace", "{ws}", "--version", "9"], "version 9 not found under {ws}/serving/"
                                                "big_tipper (versions: 7)"),
], ids=["no-model", "label-without-server", "not-a-saved-model", "no-such-version"])
def test_bad_input_publishes_nothing(ctpipe, saved_model_dir, tmp_path, flags, named):
    push_version(saved_model_dir, tmp_path / "ws" / "serving" / "big_tipper", 7)
    places = {"models": tmp_path / "ws" / "serving" / "big_tipper", "ws": tmp_path / "ws"}
    (tmp_path / "trips.csv").write_text("fare\n1.0\n")
    assert_one_line_error(ctpipe("score", *[f.format(**places) for f in flags], "--input",
                                 tmp_path / "trips.csv", "--output", tmp_path / "out"),
                          named.format(**places))
    assert not (tmp_path / "out").exists()


def test_a_pushed_version_scores_the_trips_and_publishes_them(
        ctpipe, saved_model_dir, reference_scores, taxi_rows, csv_writer, tmp_path):  # noqa: F811
    header, rows = taxi_rows
    trips = csv_writer(tmp_path / "trips.csv", header, rows[:50])
    models = tmp_path / "ws" / "serving" / "big_tipper"
    push_version(saved_model_dir, models, 3)
    scored = ctpipe("score", "--workspace", tmp_path / "ws", "--input", trips, "--output",
                    tmp_path / "out")
    assert (scored.status, scored.err) == (0, ""), scored
    lines = scored.out.splitlines()
    assert lines[0].startswith("scored 50 rows with model version 3 in ")
    assert lines[1].startswith("gate passed: NaN rate 0.00%, mean ")
    latest = json.loads((tmp_path / "out" / "LATEST").read_text())
    assert lines[-1] == (f"published {tmp_path / 'out' / latest['scores']} (named by "
                         f"{tmp_path / 'out'}/LATEST)")
    published = [row for part in sorted((tmp_path / "out" / latest["scores"]).glob("part-*.csv"))
                 for row in csv.DictReader(part.open())]
    assert {row["model_version"] for row in published} == {"3"}
    by_key = {row["key"]: float(row["probability"]) for row in published}
    assert [by_key[f"trips.csv:{n}"] for n in range(1, 51)] == pytest.approx(
        reference_scores[:50], abs=1e-5)
    before = tree(tmp_path / "out")
    refused = ctpipe("score", "--workspace", tmp_path / "ws", "--input", trips, "--output",
                     tmp_path / "out", "--min-rows", "51")
    assert_one_line_error(refused, "scoring gate refused the scores: 50 rows scored, at least 51 "
                          f"required; {tmp_path / 'out' / latest['scores']} is still the "
                          "published result")
    assert tree(tmp_path / "out") == before, "a result the gate refuses is not published"
