"""`ctpipe score` on real trips with real SavedModels: the encoder, the Beam job, the gate and
the atomic publication."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from ctpipe.common import features
from ctpipe.common.layout import PUSH_RECORD_FILE
from ctpipe.scoring import gate, publish
from ctpipe.scoring.encode import ExampleEncoder
from ctpipe.scoring.job import ModelSource, ScoringError, Stats, plan_ranges, read_range
from ctpipe.scoring.kubeflow import RESULT_FILE, Executor
from ctpipe.serving.client.examples import row_to_example
from tests.serving.conftest import in_process_server, push_version

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


@pytest.fixture(scope="module")
def trips(tmp_path_factory, taxi_rows, csv_writer) -> Path:
    """Two CSV files of real trips (all raw columns, empty cells included)."""
    header, rows = taxi_rows
    folder = tmp_path_factory.mktemp("trips")
    csv_writer(folder / "a.csv", header, rows[:700])
    csv_writer(folder / "more" / "b.csv", header, rows[700:1500])
    return folder


def _in_process(model_dir: Path, rows: list[dict]) -> np.ndarray:
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    examples = tf.constant([row_to_example(r) for r in rows])
    return signature(examples=examples)[features.PREDICTION_KEY].numpy()


def _push(model_dir: Path, workspace: Path, version: int, reference_rows=None) -> Path:
    """A pushed version; with `reference_rows`, a push record holding its eval predictions."""
    target = workspace / "serving" / "big_tipper" / str(version)
    shutil.copytree(model_dir, target)
    if reference_rows is not None:
        scores = _in_process(model_dir, reference_rows)
        record = target / PUSH_RECORD_FILE
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"pushed_at": 1, "auc": 0.9, "eval_predictions": {
            "count": len(scores), "mean": float(scores.mean()), "std": float(scores.std()),
            "min": float(scores.min()), "max": float(scores.max()),
            "quantiles": {q: float(np.quantile(scores, float(q)))
                          for q in ("0.01", "0.5", "0.99")}}}))
    return target


def test_the_encoder_writes_the_examples_the_client_writes(trips, taxi_rows):
    _, rows = taxi_rows
    chunk = next(plan_ranges(str(trips / "a.csv"), "a.csv"))
    table = read_range(chunk)
    ours = ExampleEncoder().encode_table(table)
    assert len(ours) == chunk.rows == 700
    for mine, row in zip(ours, rows[:700]):
        assert tf.train.Example.FromString(mine) == tf.train.Example.FromString(
            row_to_example(row))


def test_ranges_cover_every_row_once(trips, taxi_rows):
    path = str(trips / "a.csv")
    ranges = list(plan_ranges(path, "a.csv", range_bytes=5000))
    assert len(ranges) > 5
    assert [r.first_row for r in ranges] == list(np.cumsum([1] + [r.rows for r in ranges[:-1]]))
    assert sum(read_range(r).num_rows for r in ranges) == 700


def test_scores_equal_the_model_in_process_and_are_published(trips, taxi_rows, saved_model_dir,
                                                              tmp_path):
    _, rows = taxi_rows
    _push(saved_model_dir, tmp_path / "ws", 1700000000, reference_rows=rows[2000:2600])
    source = publish.model_source(None, str(tmp_path / "ws"), "big_tipper", None)
    output = tmp_path / "out"
    result = publish.score(source, str(trips), str(output), beam_args=BEAM_ARGS)
    assert (result.rows, result.model_version, result.gate.notes) == (1500, 1700000000, [])
    latest = json.loads((output / "LATEST").read_text())
    assert output / latest["scores"] == Path(result.folder)
    scores = pa_csv.read_csv(next(Path(result.folder).glob("part-a-*.csv"))).to_pandas()
    assert list(scores.columns) == ["key", features.PREDICTION_KEY, "model_version"]
    assert list(scores["key"][:2]) == ["a.csv:1", "a.csv:2"]
    np.testing.assert_allclose(scores[features.PREDICTION_KEY], _in_process(saved_model_dir,
                                                                             rows[:700]), atol=1e-6)
    assert set(scores["model_version"]) == {1700000000}
    # Parquet, a key column, a given version; the newest `keep` results stay.
    parquet = publish.score(source, str(trips / "a.csv"), str(output), output_format="parquet",
                            key_column="trip_start_timestamp", beam_args=BEAM_ARGS, keep=1)
    table = pq.read_table(next(Path(parquet.folder).glob("*.parquet")))
    assert table.column("key").to_pylist()[0] == rows[0]["trip_start_timestamp"]
    assert sorted(p.name for p in output.iterdir() if p.name.startswith("scores-")) == [
        Path(parquet.folder).name]


def test_the_gate_refuses_a_constant_model_and_keeps_the_previous_output(
        trips, taxi_rows, saved_model_dir, constant_model_dir, tmp_path):
    _, rows = taxi_rows
    output = tmp_path / "out"
    good = publish.score(publish.model_source(str(saved_model_dir), None, "big_tipper", None),
                         str(trips), str(output), beam_args=BEAM_ARGS)
    latest_before = (output / "LATEST").read_text()
    published = sorted(p.name for p in output.iterdir())
    # As a pushed version with eval predictions, and as a bare folder without them.
    constant = _push(constant_model_dir, tmp_path / "ws", 2, reference_rows=rows[2000:2600])
    for model_dir in (constant, constant_model_dir):
        with pytest.raises(ScoringError, match=r"scoring gate refused the scores: the scores do "
                                               r"not vary \(std 0\.000000, all about 0\.5000\)"
                                               r": the model outputs a constant; .*"
                                               + Path(good.folder).name):
            publish.score(publish.model_source(str(model_dir), None, "big_tipper", None),
                          str(trips), str(output), beam_args=BEAM_ARGS)
        assert (output / "LATEST").read_text() == latest_before
        assert sorted(p.name for p in output.iterdir()) == published
    assert len(list(Path(good.folder).glob("part-*.csv"))) == 2


def test_the_gate_compares_with_the_eval_predictions():
    reference = {"count": 1000, "mean": 0.3, "std": 0.25, "min": 0, "max": 1,
                 "quantiles": {"0.01": 0.01, "0.5": 0.25, "0.99": 0.95}}
    rng = np.random.default_rng(0)
    similar = Stats.of(np.clip(rng.normal(0.3, 0.25, 5000), 0, 1), 1)
    assert gate.check(similar, 5000, reference).passed
    narrow = Stats.of(rng.normal(0.9, 0.02, 5000), 1)
    result = gate.check(narrow, 5000, reference)
    assert not result.passed
    assert any("std" in p for p in result.problems)
    assert any(p.startswith("quantile 0.5 of the scores") for p in result.problems)
    with_nan = Stats.of(np.array([0.2, np.nan, 0.4, 0.6]), 1)
    assert gate.check(with_nan, 5, None).problems == ["5 rows read but 4 scored",
                                                      "NaN rate 25.00% above 0.00%"]


def test_the_kubeflow_step_publishes_like_ctpipe_score(trips, saved_model_dir, tmp_path):
    _push(saved_model_dir, tmp_path / "ws", 5)
    artifact = standard_artifacts.InferenceResult()
    artifact.uri = str(tmp_path / "artifact")
    Executor().Do({}, {"scores": [artifact]}, {
        "input_root": str(trips), "output_root": str(tmp_path / "out"),
        "serving_model_dir": str(tmp_path / "ws" / "serving" / "big_tipper"), "version": 0,
        "output_format": "parquet", "key_column": ""})
    record = json.loads((tmp_path / "artifact" / RESULT_FILE).read_text())
    latest = json.loads((tmp_path / "out" / "LATEST").read_text())
    assert (record["rows"], record["model_version"], latest["model_version"]) == (1500, 5, 5)
    assert Path(record["folder"]).name == latest["scores"]


def test_a_served_model_scores_too(trips, taxi_rows, saved_model_dir, tmp_path):
    _, rows = taxi_rows
    push_version(saved_model_dir, tmp_path / "base", 7)
    with in_process_server(tmp_path / "base") as (handle, _):
        source = ModelSource(server=f"127.0.0.1:{handle.port}", model_name="big_tipper")
        result = publish.score(source, str(trips / "a.csv"), str(tmp_path / "out"),
                               beam_args=BEAM_ARGS)
    assert (result.rows, result.model_version) == (700, 7)
    assert result.gate.notes  # no push record to compare with: said so
    scores = pa_csv.read_csv(next(Path(result.folder).glob("part-*.csv"))).to_pandas()
    np.testing.assert_allclose(scores[features.PREDICTION_KEY],
                               _in_process(saved_model_dir, rows[:700]), atol=1e-6)
