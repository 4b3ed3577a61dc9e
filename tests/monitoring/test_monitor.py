"""`ctpipe monitor` on real prediction logs: real trips sent through a real `ctpipe serve` on
127.0.0.1 with logging on, compared with the references a pushed version carries (training
statistics of real trips, the model's real predictions on the eval split)."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.drift import read_schema
from bench.monitor import predict, served_examples, split_rows, stage_version, window_rows
from ctpipe.cli import main
from ctpipe.commands.monitor import EXIT_CROSSED
from ctpipe.common.layout import TRAINING_STATISTICS_FILE
from ctpipe.monitoring.options import WORKSPACE_SUMMARY
from ctpipe.monitoring.summary import OUTPUT_TOLERANCE, output_distance
from tests.serving.conftest import MODEL_NAME, in_process_server, predict_request

REQUESTS = 300  # per batch: above --min-examples (200), about two 2016 quarters
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trips() -> dict[str, list[dict[str, str]]]:
    """Spans 1-15 (2013-Q1 .. 2016-Q3) split 4:1 as ExampleGen does."""
    train, evaluation = split_rows(window_rows(), read_schema())
    return {"train": train, "eval": evaluation}


@pytest.fixture(scope="module")
def eval_predictions(saved_model_dir, trips) -> list[float]:
    return predict(saved_model_dir, served_examples(trips["eval"]))


def _stage(saved_model_dir, trips, eval_predictions, base_path: Path, version: int) -> Path:
    return stage_version(saved_model_dir, base_path, version, trips["train"], eval_predictions,
                         read_schema(), "1-15")


def _draw(trips, seed: int, change=None) -> list[dict[str, str]]:
    """REQUESTS trips drawn like the training data (from both splits), optionally changed."""
    rows = random.Random(seed).choices(trips["train"] + trips["eval"], k=REQUESTS)
    return [change(index, dict(row)) if change else row for index, row in enumerate(rows)]


def _fare_times_3(_: int, row: dict[str, str]) -> dict[str, str]:
    return {**row, "fare": f"{float(row['fare']) * 3:.2f}"}


def _company_mostly_missing(index: int, row: dict[str, str]) -> dict[str, str]:
    return {**row, "company": ""} if index % 10 else row


def _monitor(capsys, *args: str) -> tuple[int, str, str]:
    """`ctpipe monitor ARGS` as main() runs it: (exit status, stdout, stderr)."""
    status = main(["monitor", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def served(tmp_path_factory, saved_model_dir, trips, eval_predictions):
    """A workspace with version 1, served with every request logged; a factory that sends rows
    (one batch-1 Predict call each) and returns once the log holds them."""
    workspace = tmp_path_factory.mktemp("ws")
    base_path = workspace / "serving" / MODEL_NAME
    _stage(saved_model_dir, trips, eval_predictions, base_path, 1)
    prefix = workspace / "logs" / MODEL_NAME
    with in_process_server(base_path, prediction_log_file_prefix=str(prefix),
                           prediction_log_sampling_rate=1.0,
                           file_system_poll_wait_seconds=0.2) as (handle, stubs):
        def send(rows) -> set[int]:
            versions = {stubs.prediction.Predict(predict_request([example]), timeout=30)
                        .model_spec.version.value for example in served_examples(rows)}
            handle.frontend.loggers[MODEL_NAME].flush()
            return versions

        yield {"workspace": workspace, "base_path": base_path, "prefix": prefix, "send": send,
               "stubs": stubs}


def test_requests_like_the_training_data_pass_and_shifted_ones_are_named(
        served, capsys, saved_model_dir, trips, eval_predictions):
    workspace, prefix = str(served["workspace"]), str(served["prefix"])
    assert served["send"](_draw(trips, seed=1)) == {1}

    status, out, err = _monitor(capsys, "--logs", prefix, "--workspace", workspace,
                                "--last", str(REQUESTS))
    assert (status, err) == (0, ""), out
    assert "version 1: 300 requests, 300 examples, trained on spans 1-15" in out
    assert "all within thresholds" in out and "CROSSED" not in out

    # Version 2 (the same model) arrives; it answers the shifted requests.
    _stage(saved_model_dir, trips, eval_predictions, served["base_path"], 2)
    deadline = time.monotonic() + 60
    probe = served_examples(trips["eval"][:1])
    while served["stubs"].prediction.Predict(predict_request(probe), timeout=30) \
            .model_spec.version.value != 2:
        assert time.monotonic() < deadline, "version 2 was not served within 60 s"
        time.sleep(0.1)
    assert served["send"](_draw(trips, seed=2, change=_fare_times_3)) == {2}

    status, out, err = _monitor(capsys, "--logs", prefix, "--workspace", workspace,
                                "--last", str(2 * REQUESTS))
    assert (status, err) == (EXIT_CROSSED, ""), out
    crossed = out.split("THRESHOLDS CROSSED", 1)[1].strip().splitlines()[1:]
    assert crossed and all(line.strip().startswith("version 2: ") for line in crossed), out
    assert any("skew: feature 'fare' jensen_shannon_divergence" in line for line in crossed)
    fare_rows = [line for line in out.splitlines() if line.strip().startswith("fare ")]
    assert len(fare_rows) == 2 and fare_rows[1].endswith("CROSSED") and \
        not fare_rows[0].endswith("CROSSED"), out  # version 1, then version 2


def test_a_feature_missing_in_most_requests_is_named_and_json_parses(served, capsys, trips):
    served["send"](_draw(trips, seed=3, change=_company_mostly_missing))

    status, out, err = _monitor(capsys, "--logs", str(served["prefix"]), "--workspace",
                                str(served["workspace"]), "--last", str(REQUESTS), "--json")
    summary = json.loads(out)
    assert (status, err) == (EXIT_CROSSED, "")
    assert summary == json.loads((served["workspace"] / WORKSPACE_SUMMARY).read_text())
    assert summary["status"] == "crossed" and summary["window"]["records"] == REQUESTS
    (section,) = summary["versions"]
    company = next(row for row in section["features"] if row["feature"] == "company")
    assert company["crossed"] and company["presence_distance"] > company["threshold"]
    assert company["missing"]["serving"] == pytest.approx(
        1 - sum(1 for index, row in enumerate(_draw(trips, seed=3))
                if index % 10 == 0 and row["company"]) / REQUESTS)
    assert company["missing"]["training"] < 0.5
    assert any("feature 'company' rows with a value" in line for line in summary["crossed"])
    assert not any(row["crossed"] for row in section["features"] if row["feature"] != "company")
    output = section["output"]
    assert set(output["serving"]) >= {"count", "mean", "std", "min", "max", "quantiles",
                                      "null_fraction"}
    assert output["serving"]["count"] == REQUESTS and output["serving"]["null_fraction"] == 0


def test_the_command_line_as_a_user_sees_it(served, trips):
    """`ctpipe monitor` in its own process, as a CronJob runs it."""
    served["send"](_draw(trips, seed=4, change=_company_mostly_missing))

    result = subprocess.run(
        [sys.executable, "-m", "ctpipe.cli", "monitor", "--logs", str(served["prefix"]),
         "--workspace", str(served["workspace"]), "--last", str(REQUESTS)],
        capture_output=True, text=True, cwd=REPO, timeout=600)

    assert result.returncode == EXIT_CROSSED, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ctpipe monitor: model {MODEL_NAME}, last {REQUESTS} logged "
                               "requests")
    header = next(line for line in lines if line.strip().startswith("feature "))
    for column in ("comparator", "distance", "presence", "threshold", "missing serving/training",
                   "NaN serving/training"):
        assert column in header
    assert any(line.strip().startswith("serving ") for line in lines)
    assert any(line.strip().startswith("eval ") for line in lines)
    assert "THRESHOLDS CROSSED (1):" in result.stdout
    assert re.search(r"version \d+: skew: feature 'company' rows with a value \d+% -> \d+%, "
                     r"infinity_norm \d\.\d{3} > threshold 0\.150", result.stdout), result.stdout


def test_output_distance_reads_the_served_share_at_each_eval_quantile():
    quantiles = {"0.5": 0.4, "0.75": 0.6}
    same = np.linspace(0.0, 0.8, 101)
    higher = np.linspace(0.5, 0.7, 101)  # none below the eval median, half below its q0.75

    assert output_distance(same, quantiles)[0] == pytest.approx(0.0, abs=0.01)
    assert output_distance(np.append(higher, np.nan), quantiles) == (
        pytest.approx(0.5), "0.5", (0.0, 0.0))
    assert output_distance(higher, {"0.75": 0.6}, tolerance=0.0)[0] == pytest.approx(0.25,
                                                                                     abs=0.01)


def test_output_distance_ignores_tiny_differences_inside_a_point_mass():
    # As for cash trips: the eval median lies inside a mass of near-zero predictions, and the
    # served ones differ from the eval's by 1e-6, which must not decide the share.
    near_zero = np.concatenate([np.full(24, 0.5e-5), np.full(36, 1.5e-5), np.full(40, 0.7)])

    assert output_distance(near_zero, {"0.5": 1e-5}, tolerance=0.0)[0] == pytest.approx(0.26)
    assert output_distance(near_zero, {"0.5": 1e-5})[0] == 0.0
    assert OUTPUT_TOLERANCE == 0.01


@pytest.fixture
def logged(tmp_path, saved_model_dir, trips, eval_predictions):
    """Version 1 with its references, and real log records of 40 requests it answered."""
    base_path = tmp_path / "ws" / "serving" / MODEL_NAME
    _stage(saved_model_dir, trips, eval_predictions, base_path, 1)
    prefix = tmp_path / "logs" / MODEL_NAME
    with in_process_server(base_path, prediction_log_file_prefix=str(prefix),
                           prediction_log_sampling_rate=1.0) as (handle, stubs):
        for example in served_examples(trips["eval"][:40]):
            stubs.prediction.Predict(predict_request([example]), timeout=30)
        handle.frontend.loggers[MODEL_NAME].flush()
    return {"workspace": tmp_path / "ws", "base_path": base_path, "prefix": prefix}


def test_failures_say_what_is_wrong(logged, capsys, tmp_path):
    workspace, prefix = str(logged["workspace"]), str(logged["prefix"])

    status, _, err = _monitor(capsys, "--logs", str(tmp_path / "nothing"), "--workspace",
                              workspace)
    assert status == 1 and f"no prediction log files match {tmp_path / 'nothing'}-*.tfrecord" \
        in err

    status, _, err = _monitor(capsys, "--logs", prefix, "--workspace", workspace)
    assert status == 1 and "too few logged examples to compare (version 1: 40;" in err

    status, _, err = _monitor(capsys, "--logs", prefix, "--model-base-path",
                              str(logged["base_path"]), "--model-name", "other")
    assert status == 1 and "hold no Predict call of model 'other'" in err
    assert f"requests of model '{MODEL_NAME}': 40" in err

    status, _, err = _monitor(capsys, "--logs", prefix, "--model-base-path",
                              str(tmp_path / "missing"))
    assert status == 1 and f"model base path {tmp_path / 'missing'} does not exist" in err

    (logged["base_path"] / "1" / TRAINING_STATISTICS_FILE).unlink()
    status, _, err = _monitor(capsys, "--logs", prefix, "--workspace", workspace,
                              "--min-examples", "10")
    assert status == 1 and f"version 1 has no {TRAINING_STATISTICS_FILE}" in err
    assert all(line.startswith("ctpipe: ") for line in err.strip().splitlines())


def test_a_log_file_still_being_written_is_read_up_to_its_last_whole_record(logged, capsys):
    (first,) = sorted(logged["prefix"].parent.glob("*.tfrecord"))
    second = logged["prefix"].parent / f"{MODEL_NAME}-00002.tfrecord"
    second.write_bytes(first.read_bytes() + first.read_bytes()[:100])  # a partial last record

    status, out, err = _monitor(capsys, "--logs", str(logged["prefix"]), "--model-base-path",
                                str(logged["base_path"]), "--min-examples", "10", "--json")
    summary = json.loads(out)
    assert status in (0, EXIT_CROSSED) and err == ""
    assert summary["window"]["records"] == 80
    (note,) = summary["window"]["notes"]
    assert note.startswith(f"{second}: read 40 records, then a partial or corrupt record")
    assert not (logged["workspace"] / WORKSPACE_SUMMARY).exists()  # saved with --workspace only


def test_a_wildcard_prefix_reads_the_logs_of_several_servers(logged, capsys, tmp_path):
    (written,) = sorted(logged["prefix"].parent.glob("*.tfrecord"))
    for pod in ("serving-0", "serving-1"):  # each server logs under its own folder
        (tmp_path / "pods" / pod).mkdir(parents=True)
        (tmp_path / "pods" / pod / written.name).write_bytes(written.read_bytes())

    status, out, _ = _monitor(capsys, "--logs", str(tmp_path / "pods" / "*" / MODEL_NAME),
                              "--model-base-path", str(logged["base_path"]),
                              "--min-examples", "10", "--json")
    summary = json.loads(out)

    assert status in (0, EXIT_CROSSED)
    assert summary["window"]["records"] == 80 and len(summary["window"]["files"]) == 2
    assert summary["versions"][0]["examples"] == 80
