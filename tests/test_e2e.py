"""End to end with TFX's LocalDagRunner on a small slice of the real data.

One module-scoped workspace, runs in order: the first run trains and pushes; an unchanged re-run
is fully cached; a new span costs only its own ingestion and is evaluated against, and
warm-started from, the served model, while the older spans are referred to where they are
stored; a rewritten old span is ingested again; an anomalous span
stops the run before the Trainer (nothing pushed); accepting it into the schema as the README
says lets the next run through. Last, `ctpipe report` on all those runs opens in headless
Chromium with every plot drawn.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2 as mlmd
from mlflow import MlflowClient

from bench.monitor import send_logged_requests, served_examples
from ctpipe import cli, models
from ctpipe.commands.monitor import EXIT_CROSSED
from ctpipe.common import features
from ctpipe.components.pusher.executor import overall_auc
from ctpipe.components.track_run.executor import (
    INPUT_TYPES,
    INPUTS,
    RECORD_KEY,
    Executor,
    TrackingRecord,
)
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import local_config
from ctpipe.pipeline.local_runner import run_local
from ctpipe.reporting import contents, page, status, tfma_results
from ctpipe.retention import gc
from ctpipe.retention.gc import open_store
from ctpipe.serving.client import protos, version_labels
from ctpipe.serving.client.examples import rows_to_examples
from ctpipe.serving.prediction_log import PredictionLogger
from tests.chromium import DRAWN_PLOTS, load_page
from tests.conftest import write_csv
from tests.tensorboard_events import curve, hparams, read_events

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
# Spans of ~300 trips: their long-tailed vocabularies (census tracts) differ more by chance than
# real quarters' do, so the staleness limit is the one tests/containers uses (docs/trainer.md).
SMALL = dict(train_steps=120, eval_steps=5, min_auc=0.6,
             trainer={"steps_per_epoch": 40, "staleness": {"max_vocabulary_gap": 0.15}})
FIRST_SPANS = (1, 2, 3, 4)  # a whole year: later quarters bring no month the model lacks


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _states(events) -> dict[str, str]:
    return {e.component: e.state for e in events if e.state != "note"}


def _notes(events, component: str) -> list[str]:
    return [e.message for e in events if e.state == "note" and e.component == component]


def _window_note(events) -> tuple[str, ...]:
    """SpanWindow's note as (spans, what was ingested, what was referred to)."""
    (note,) = _notes(events, "SpanWindow")
    spans, _, rest = note.removeprefix("SpanWindow: spans ").partition(" (")
    ingested, _, referred = rest.partition("); ")[2].partition("; ")
    return spans, ingested, referred


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_source):
    root = tmp_path_factory.mktemp("e2e")
    data.prepare(root / "all-spans", small_source)
    incoming = root / "incoming"
    incoming.mkdir()
    for span in FIRST_SPANS:
        shutil.copytree(root / "all-spans" / f"span-{span}", incoming / f"span-{span}")
    # Tracked in the workspace's embedded MLflow store (`tracking: true`).
    config = local_config(root / "ws", incoming, {**SMALL, "tracking": True})
    events = run_local(config, root / "ws")
    return {"root": root, "config": config, "events": events}


def _mlflow(root: Path) -> tuple[MlflowClient, list]:
    """The workspace's MLflow store and its runs, oldest first."""
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{root / 'ws' / 'mlflow.sqlite'}")
    experiment = mlflow.get_experiment_by_name("taxi-big-tipper")
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return mlflow, runs


def _registered(mlflow: MlflowClient) -> dict[str, str]:
    """Serving version -> the registry's version of the pushed models."""
    return {v.tags["serving_version"]: v.version
            for v in mlflow.search_model_versions("name = 'big_tipper'")}


def _served_versions(config) -> list[Path]:
    return sorted(p for p in Path(config.serving_model_dir).iterdir() if p.name.isdigit())


def test_first_run_pushes_a_model_that_scores_serialized_examples(workspace):
    config, events = workspace["config"], workspace["events"]
    assert set(_states(events).values()) == {"executed"}
    assert _notes(events, "ExampleGen")[0].startswith("ExampleGen: span 4, ")
    assert _window_note(events) == ("1-4", "new span 4, caught up 1,2,3",
                                    "referred to none where they are stored")
    versions = _served_versions(config)
    assert len(versions) == 1 and (versions[0] / "saved_model.pb").is_file()
    assert not [p for p in Path(config.serving_model_dir).iterdir() if p.name.startswith(".")]

    header, rows = _rows(workspace["root"] / "all-spans" / "span-5" / "data.csv")
    # Raw columns as a client sends them, no label.
    serialized = rows_to_examples(rows, "span-5")
    labels = [int(row[features.LABEL]) for row in rows]

    signature = tf.saved_model.load(str(versions[0])).signatures["serving_default"]
    scores = signature(**{features.EXAMPLES_KEY: tf.constant(serialized)})[
        features.PREDICTION_KEY].numpy()
    assert scores.shape == (len(rows),)
    auc = tf.keras.metrics.AUC()
    auc.update_state(np.array(labels), scores)
    assert auc.result().numpy() > 0.75, "the pushed model must rank unseen trips well"

    (model_run,) = (Path(config.pipeline_root) / "Trainer" / "model_run").iterdir()
    board = read_events(model_run)  # TensorBoard's view of the ModelRun artifact
    assert sorted(curve(board, "train/loss")) == list(range(10, 121, 10))
    assert sorted(curve(board, "validation/auc")) == [40, 80, 120]
    assert hparams(board)["start"] == "scratch" and board.Graph() is not None

    report = status.format_status(workspace["root"] / "ws")
    assert "succeeded" in report and "spans 1-4" in report
    assert f"version {versions[0].name}" in report

    # MLflow: one run with the configuration, window, figures and the TensorBoard link; the
    # pushed model registered, its alias following the label TF Serving serves it under.
    mlflow, (run,) = _mlflow(workspace["root"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["config.train_steps"] == "120" and params["window.spans"] == "1-4"
    assert {f"span.{n}.fingerprint" for n in FIRST_SPANS} <= set(params)
    assert params["trainer.origin"] == "scratch" and params["trainer.start"].startswith(
        "Trainer: from scratch") and params["code_version"]
    assert metrics["auc/candidate"] > 0.6 and "auc/candidate/payment_type:Cash" in metrics
    assert metrics["seconds/Trainer"] > 0 and tags["ctpipe.step.Pusher"] == "executed"
    assert tags["blessed"] == "true" and tags["pushed_version"] == versions[0].name
    assert tags["tensorboard.logdir"] == str(model_run)
    registered = _registered(mlflow)
    assert list(registered) == [versions[0].name]
    assert dict(mlflow.get_registered_model("big_tipper").aliases) == {
        "champion": registered[versions[0].name]}
    assert _notes(events, "Tracking")[0].startswith(f"Tracking: logged MLflow run "
                                                    f"{run.info.run_id}")


def test_second_identical_run_is_fully_cached(workspace):
    config = workspace["config"]
    before = _tree_digest(Path(config.serving_root))
    events = run_local(config, workspace["root"] / "ws")
    states = _states(events)
    assert set(states.values()) == {"cached"}, states
    assert {"ExampleGen", "StatisticsGen", "SpanWindow", "ServedModel", "Trainer", "Evaluator",
            "Pusher"} <= set(states)
    mlflow, runs = _mlflow(workspace["root"])
    assert len(runs) == 2 and runs[-1].data.tags["ctpipe.step.Trainer"] == "cached"
    assert len(_registered(mlflow)) == 1, "the same pushed model: no new version"
    assert _tree_digest(Path(config.serving_root)) == before


def test_ctpipe_run_with_nothing_new_says_so_and_a_missing_span_fails(workspace, capsys):
    root = workspace["root"]
    command = ["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws"),
               "--config", str(_config_file(root))]
    runs = len(status.WorkspaceStatus(root / "ws").runs(100))
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert out.startswith("Nothing new: span 4 (the newest in ") and "--rerun" in out
    assert len(status.WorkspaceStatus(root / "ws").runs(100)) == runs, "nothing ran"

    assert cli.main([*command, "--span", "7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "span 7 has no files" in err[0] and "arrived" in err[0], err


def test_a_new_span_costs_its_own_ingestion_and_builds_on_the_served_model(workspace):
    config, root = workspace["config"], workspace["root"]
    for entry in Path(config.span_index_uri).glob("span-*.json"):
        assert Path(json.loads(entry.read_text())["uri"]).is_dir(), "stored spans stay"
    served = _served_versions(config)[-1].name
    shutil.copytree(root / "all-spans" / "span-5", root / "incoming" / "span-5")
    events = run_local(config, root / "ws")
    states = _states(events)
    assert states.pop("ImportSchemaGen") == "cached"
    assert set(states.values()) == {"executed"}, states
    assert _window_note(events) == ("1-5", "new span 5",
                                    "referred to 1,2,3,4 where they are stored")
    # The window's examples artifact holds the manifest only: nothing of spans 1-4 is copied.
    window = status.latest_output(root / "ws", "Examples", "window_examples")
    assert sorted(p.name for p in Path(window.uri).rglob("*") if p.is_file()) == ["window.json"]
    assert _notes(events, "ServedModel")[0].startswith(f"ServedModel: version {served} "
                                                       "(trained on spans 1-4")
    assert _notes(events, "Trainer")[0].startswith(f"Trainer: warm start from served version "
                                                   f"{served}")
    pushed = _notes(events, "Pusher")[0]
    assert "served model" in pushed, "the Evaluator compared the candidate with the served model"
    mlflow, runs = _mlflow(root)
    metrics = runs[-1].data.metrics
    assert metrics["auc/baseline"] > 0.5 and "concept_drift/auc" in metrics
    assert any(name.startswith("drift/fare/") for name in metrics), "drift scores"
    new = _served_versions(config)[-1].name
    assert dict(mlflow.get_registered_model("big_tipper").aliases) == {
        "champion": _registered(mlflow)[new]}


def test_the_kubeflow_tracking_step_logs_what_ctpipe_run_logged(workspace, tmp_path,
                                                               monkeypatch):
    """TrackRun, the tracking step of a Kubeflow run, on the artifacts of the run above: the
    same record as `ctpipe run` logged, less what only a local run knows (step timings and
    states, the Trainer's start line)."""
    config, root = workspace["config"], workspace["root"]
    state = status.WorkspaceStatus(root / "ws")
    (run,) = state.runs(1)
    outputs = state.run_outputs(run.context_id)
    inputs = {}
    for key, step_output in INPUTS.items():
        inputs[key] = [INPUT_TYPES[key]()]
        inputs[key][0].set_mlmd_artifact(outputs[step_output])
    record = TrackingRecord()
    record.uri = str(tmp_path / "record")
    monkeypatch.chdir(tmp_path)  # MLflow's own artifact folder for a database store: ./mlruns
    uri = f"sqlite:///{tmp_path / 'kubeflow.sqlite'}"
    Executor().Do(inputs, {RECORD_KEY: [record]}, {
        "pipeline_name": config.pipeline_name, "experiment": "taxi-big-tipper",
        "tracking_uri": uri, "model_name": config.model_name, "serving_model_config": "",
        "configuration": json.dumps(config.model_dump(mode="json")),
        "outbox": str(tmp_path / "outbox"), "timeout_seconds": 5.0})

    kubeflow = MlflowClient(uri)
    (logged,) = kubeflow.search_runs([kubeflow.get_experiment_by_name(
        "taxi-big-tipper").experiment_id])
    local = _mlflow(root)[1][-1]
    local_only = lambda name: name.startswith(("seconds/", "ctpipe.step.", "trainer.start",
                                               "ctpipe.record_id", "ctpipe.pipeline_run_id",
                                               "mlflow.", "ctpipe.complete"))
    for ours, theirs in ((logged.data.params, local.data.params),
                         (logged.data.metrics, local.data.metrics),
                         (logged.data.tags, local.data.tags)):
        assert {k: v for k, v in ours.items() if not local_only(k)} == {
            k: v for k, v in theirs.items() if not local_only(k)}
    # Whether that run pushed depends on its blessing; either way both records agree.
    versions = kubeflow.search_model_versions("name = 'big_tipper'")
    if local.data.tags["pushed_version"] == "none":
        assert versions == [], "nothing pushed: nothing registered"
        return
    (version,) = versions
    assert version.tags["serving_version"] == local.data.tags["pushed_version"]
    assert dict(kubeflow.get_registered_model("big_tipper").aliases) == {
        "champion": version.version}


def test_a_rewritten_span_is_ingested_again(workspace):
    config, root = workspace["config"], workspace["root"]
    span_file = root / "incoming" / "span-2" / "data.csv"
    header, rows = _rows(span_file)
    write_csv(span_file, header, rows[: len(rows) * 3 // 4])  # a quarter of the trips withdrawn
    os.utime(span_file, (1.6e9, 1.6e9))
    events = run_local(config, root / "ws")
    assert _states(events)["ExampleGen"] == "cached"
    assert _window_note(events) == ("1-5", "new span 5, caught up 2",
                                    "referred to 1,3,4 where they are stored")


def test_anomalous_span_stops_the_run_before_training(workspace, capsys):
    config, root = workspace["config"], workspace["root"]
    header, rows = _rows(root / "all-spans" / "span-6" / "data.csv")
    rows[3]["fare"] = "twelve dollars"  # a numeric column holding text
    write_csv(root / "incoming" / "span-6" / "data.csv", header, rows)
    before = _tree_digest(Path(config.serving_root))

    code = cli.main(["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws"),
                     "--config", str(_config_file(root))])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1, err
    assert "ValidationGate failed" in err[0] and "'fare'" in err[0] and "span 6" in err[0]
    assert _tree_digest(Path(config.serving_root)) == before
    runs = status.WorkspaceStatus(root / "ws").runs(1)
    assert runs[0].state == "failed" and "Trainer" not in runs[0].nodes
    _, tracked = _mlflow(root)  # a failed run is logged too
    assert tracked[-1].info.status == "FAILED"
    assert tracked[-1].data.tags["ctpipe.step.ValidationGate"] == "failed"
    assert tracked[-1].data.tags["pushed_version"] == "none"


def test_the_readme_schema_accept_workflow(workspace, capsys, tmp_path):
    """A new payment type stops the run; `ctpipe schema accept` folds it into the curated
    schema (a copy here); the next run, with that schema, goes through."""
    config, root = workspace["config"], workspace["root"]
    header, rows = _rows(root / "all-spans" / "span-6" / "data.csv")
    for row in rows[::4]:
        row["payment_type"] = "Mobile"
    write_csv(root / "incoming" / "span-6" / "data.csv", header, rows)
    schema = tmp_path / "schema.pbtxt"
    shutil.copy(config.schema_path, schema)
    settings = root / "accept.yaml"
    settings.write_text(_config_file(root).read_text() + f"schema_path: {schema}\n")
    command = ["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws"),
               "--config", str(settings)]

    assert cli.main(command) == 1
    assert "Mobile" in capsys.readouterr().err

    assert cli.main(["schema", "accept", "--workspace", str(root / "ws"),
                     "--schema", str(schema)]) == 0
    printed = capsys.readouterr().out
    assert '+  value: "Mobile"' in printed, printed
    assert "Mobile" in schema.read_text()

    # As a user types it, with TFX's own logs (-v), in a process of its own.
    done = subprocess.run([sys.executable, "-m", "ctpipe.cli", "-v", *command],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "✓ ValidationGate: executed" in done.stdout and "✓ Trainer: executed" in done.stdout
    assert "Component Trainer is running." in done.stderr, "-v shows TFX's own log"


def _config_file(root: Path) -> Path:
    path = root / "small.yaml"
    path.write_text("train_steps: 120\neval_steps: 5\nmin_auc: 0.6\n"
                    "trainer: {steps_per_epoch: 40, staleness: {max_vocabulary_gap: 0.15}}\n"
                    "tracking: true\n")
    return path


def test_incremental_training_continues_the_served_model_and_pushes_a_canary(workspace):
    """`training: incremental` with `rollout: canary`: the new version is labelled canary in TF
    Serving's model config while stable stays on the served one."""
    config, root = workspace["config"], workspace["root"]
    for entry in Path(config.span_index_uri).glob("span-*.json"):
        assert Path(json.loads(entry.read_text())["uri"]).is_dir(), "stored spans stay"
    served = _served_versions(config)[-1].name
    models_config = root / "models.config"
    models_config.write_text(
        f'model_config_list {{ config {{ name: "big_tipper" base_path: '
        f'"{config.serving_model_dir}" model_platform: "tensorflow" '
        f'version_labels {{ key: "stable" value: {served} }} }} }}\n')
    shutil.copytree(root / "all-spans" / "span-7", root / "incoming" / "span-7")
    incremental = config.replace(
        trainer={**config.trainer.model_dump(), "training": "incremental"},
        rollout="canary", serving_model_config=str(models_config))
    events = run_local(incremental, root / "ws")
    (note,) = _notes(events, "Trainer")
    assert note.startswith(f"Trainer: warm start from served version {served}")
    assert "on span 7 + " in note and "replayed examples of spans 1-6" in note
    assert _notes(events, "Pusher")[0].startswith("Pusher: pushed version"), \
        "the incremental candidate was blessed against the served model and pushed"
    model_run = max((Path(config.pipeline_root) / "Trainer" / "model_run").iterdir(),
                    key=lambda p: int(p.name))
    board = read_events(model_run)
    assert hparams(board)["incremental"] is True and curve(board, "validation/auc")
    pushed = _served_versions(config)[-1].name
    labels = version_labels.model_entry(version_labels.read_config(models_config),
                                        "big_tipper").version_labels
    assert dict(labels) == {"stable": int(served), "canary": int(pushed)}
    # The registry's aliases follow: champion stays on stable, the canary is the challenger.
    mlflow, _ = _mlflow(root)
    registered = _registered(mlflow)
    assert dict(mlflow.get_registered_model("big_tipper").aliases) == {
        "champion": registered[served], "challenger": registered[pushed]}


def test_drift_is_reported_and_stops_the_run_under_the_stop_policy(workspace, capsys):
    config, root = workspace["config"], workspace["root"]
    header, rows = _rows(root / "all-spans" / "span-8" / "data.csv")
    for row in rows:
        row["fare"] = str(float(row["fare"] or 0) * 3)  # every fare tripled
    write_csv(root / "incoming" / "span-8" / "data.csv", header, rows)
    before = _tree_digest(Path(config.serving_root))

    stop = root / "stop.yaml"
    stop.write_text(_config_file(root).read_text() + "drift_policy: stop\n")
    command = ["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws")]
    assert cli.main([*command, "--config", str(stop)]) == 1
    captured = capsys.readouterr()
    assert "drift: feature 'fare'" in captured.out, "one line per drifted feature"
    (error,) = captured.err.strip().splitlines()
    assert "DataDriftError" in error and "'fare'" in error and "drift_policy: stop" in error
    assert _tree_digest(Path(config.serving_root)) == before, "nothing pushed"

    assert cli.main([*command, "--config", str(_config_file(root))]) == 0, "warn: the run goes on"
    out = capsys.readouterr().out
    assert "drift: feature 'fare'" in out and "✓ Trainer: executed" in out
    history = status.format_status(root / "ws")
    assert "span 8    data drift in fare" in history


def test_a_span_whose_labels_turned_is_concept_drift(workspace, capsys):
    """The trips of span 6 again as span 9, every label reversed: the features look as before,
    their relation to the label does not. Before training on it, the served model scores the
    span far below its AUC at the push; `ctpipe status` keeps that per span."""
    root = workspace["root"]
    header, rows = _rows(root / "all-spans" / "span-6" / "data.csv")
    for row in rows:
        row[features.LABEL] = str(1 - int(row[features.LABEL]))
    write_csv(root / "incoming" / "span-9" / "data.csv", header, rows)
    assert cli.main(["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws"),
                     "--config", str(_config_file(root))]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines()
               if "concept drift: served version" in line]
    assert "no concept drift" not in line
    assert "on span 9" in line and "fell" in line and "limit: a fall of 0.05" in line

    spans = {line.split()[1]: line for line in status.format_status(root / "ws").splitlines()
             if line.strip().startswith("span ")}
    assert spans["9"].endswith("CONCEPT DRIFT")
    assert spans["5"].endswith("no concept drift"), "a span like the ones before it"


# Run in a fresh interpreter: the command as a user runs it, and which heavy libraries it loaded.
_REPORT_PROCESS = """
import json, sys, time
from ctpipe import cli
started = time.monotonic()
code = cli.main(["report", "--workspace", sys.argv[1], "--out", sys.argv[2]])
heavy = sorted(m for m in ("tensorflow", "tfx", "tensorflow_model_analysis", "apache_beam")
               if m in sys.modules)
print(json.dumps({"code": code, "seconds": time.monotonic() - started, "heavy": heavy}))
"""


def test_lineage_of_a_pushed_version_in_one_view(workspace, capsys, tmp_path):
    """`ctpipe lineage` on the first and the newest pushed versions of the runs above, read
    back from ML Metadata, the version folders and a prediction log (no new run)."""
    ws = workspace["root"] / "ws"
    versions = [p.name for p in _served_versions(workspace["config"])]
    first, before, newest = versions[0], versions[-2], versions[-1]
    config = protos.ModelServerConfig().model_config_list.config.add().logging_config
    config.log_collector_config.filename_prefix = str(tmp_path / "big_tipper")
    config.sampling_config.sampling_rate = 1.0
    logger = PredictionLogger(config, max_bytes=1 << 20, max_files=2)
    for version in (int(newest), int(newest), int(first)):
        logger.log("Predict", protos.PredictRequest(), protos.PredictResponse(), "big_tipper",
                   version, "serving_default", "trip-1")
    logger.flush()
    logger.close()

    assert cli.main(["lineage", newest, "--workspace", str(ws), "--logs",
                     str(tmp_path / "big_tipper")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Version {newest}: pushed ")
    card = json.loads((Path(workspace["config"].serving_model_dir) / newest
                       / "assets.extra/ctpipe/model_card.json").read_text())
    oldest, newest_span = map(int, card["window_spans"].split("-"))
    assert lines[1].startswith(f"Data: spans {card['window_spans']} (")
    spans = [line for line in lines if line.startswith("  span ")]
    assert [line.split(":")[0].strip() for line in spans] == [
        f"span {n}" for n in range(oldest, newest_span + 1)]
    assert all(": fingerprint split:" in line and "; rows eval " in line and ", train " in line
               for line in spans)
    text = "\n".join(lines)
    statistics = next(line for line in lines if line.startswith("Statistics of the newest"))
    assert Path(statistics.split(": ", 1)[1]).is_dir()
    assert "Schema anomalies: none" in text and "(sha256 " in text
    assert f"Code version: {models.code_version()}" in text
    assert (f"Trainer: {card['training']} training, started from {card['origin']}, "
            f"{card['steps']} steps") in text
    assert f"Evaluation: against served version {before}; AUC " in text
    assert "blessed: yes, infra-validated: yes" in text
    assert "Rollout: direct; no model config file to label" in text
    assert f"Prediction logs: {tmp_path / 'big_tipper'}: 2 records of this version" in text

    assert cli.main(["lineage", first, "--workspace", str(ws)]) == 0
    text = capsys.readouterr().out
    assert "Data: spans 1-4 (" in text and "started from scratch" in text
    assert "Evaluation: against no served model (the first push)" in text
    assert "Prediction logs: none known" in text
    assert cli.main(["lineage", "12345", "--workspace", str(ws)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ctpipe: no run pushed version 12345 in this workspace (pushed: {', '.join(versions)})")


def test_the_report_of_every_run_opens_in_chromium_with_every_plot_drawn(workspace, tmp_path):
    """Last in this module: the report covers every run the tests above made, however many,
    and the summary `ctpipe monitor` saved after `ctpipe serve` logged real requests."""
    ws, root = workspace["root"] / "ws", workspace["root"]
    without = tmp_path / "without-monitor.html"
    page.write_report(ws, without)
    assert "No monitor summary saved" in without.read_text()

    state = status.WorkspaceStatus(ws)
    runs, pushes = state.runs(limit=10**6), state.pushes()
    assert len(runs) >= 2 and len(pushes) >= 2, "a first run, then new spans pushed again"
    rows = [row for span in (7, 8) for row in _rows(root / "all-spans" / f"span-{span}" /
                                                    "data.csv")[1]]
    logs = tmp_path / "logs" / "big_tipper"
    send_logged_requests(Path(workspace["config"].serving_model_dir), logs,
                         served_examples(rows), tmp_path)
    # Exit 0: within every threshold, 3: some crossed; either way the summary is saved.
    assert cli.main(["monitor", "--logs", str(logs), "--workspace", str(ws)]) in (0, EXIT_CROSSED)
    monitored = json.loads((ws / "monitor" / "latest.json").read_text())
    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-c", _REPORT_PROCESS, str(ws), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and result["heavy"] == [], result
    assert result["seconds"] < 60, result
    html = out.read_text()
    assert out.stat().st_size < 1_000_000, f"{out.stat().st_size} bytes"

    assert html.count('<details class="run"') == len(runs)
    for push in pushes:
        assert push.version in html
    assert "failed at ValidationGate" in html, "the anomalous span's run"
    assert f"Latest summary of <code>ctpipe monitor</code>, {monitored['created_at']}" in html
    for version in monitored["versions"]:
        assert f"Version {version['version']}: {version['requests']} requests" in html

    # The Evaluator's results as TFMA reads them, against the TensorFlow-free reading.
    read = contents.read_workspace(ws)
    newest = next(r for r in reversed(read.runs) if r.evaluation is not None)
    evaluation = state.run_outputs(newest.summary.context_id)[("Evaluator", "evaluation")]
    overall = tfma_results.load_metrics(evaluation.uri)[0]
    by_tfma = overall_auc(evaluation.uri)
    assert overall.metrics["candidate"]["auc"] == pytest.approx(by_tfma["auc"])
    assert overall.metrics["baseline"]["auc"] == pytest.approx(by_tfma["baseline_auc"])

    loaded = load_page(out, DRAWN_PLOTS)
    assert loaded.problems == [], loaded.problems
    assert loaded.requests == [out.resolve().as_uri()], "the page loads nothing else"
    plots = loaded.value
    assert plots["finished"] and plots["specs"] == len(plots["figures"]) > 0
    for figure in plots["figures"]:
        assert figure["error"] is None and figure["drawn"] > 0, figure
        assert figure["visible_marks"] > 0 and figure["width"] > 0, figure
        assert figure["title"] and figure["axes"] >= 2 and figure["legend"] >= 1, figure
    titles = {f["title"] for f in plots["figures"]}
    assert {"AUC across pushed versions", "AUC on each new span vs when pushed",
            "Calibration (all eval examples)", "AUC by payment_type",
            "Skew of served requests against training, per feature",
            "Predicted probability: quantiles"} <= titles, titles
    assert any(t.startswith("Drift of span") for t in titles), titles
    assert {f["kind"] for f in plots["figures"]} == {"histogram", "bars", "lines"}


class _Killed(BaseException):
    """Stands for SIGKILL at one point of gc's order (nothing of gc runs after it)."""


def _artifact_files(ws: Path) -> dict[int, dict[str, str] | None]:
    """Each artifact under the pipeline root: its files' digests, None when its URI is gone."""
    root = str(ws / "pipeline_root")
    found = {}
    for artifact in open_store(ws).get_artifacts():
        path = Path(artifact.uri)
        if artifact.uri.startswith(root):
            found[artifact.id] = (_tree_digest(path) if path.is_dir() else None
                                  if not path.exists() else {"": path.read_bytes().hex()})
    return found


def test_gc_keeps_what_serving_and_runs_need_and_survives_a_kill_and_a_racing_run(
        workspace, capsys):
    """Last in this module: it deletes. A dry run changes nothing; a gc killed after moving an
    artifact aside leaves every artifact whole at its URI or gone; a run that reuses an
    artifact gc has just marked keeps it; the rerun finishes; what the served version, the
    stored spans and the newest runs need is still there, and lineage and the report read."""
    config, ws = workspace["config"], workspace["root"] / "ws"
    # The labels the incremental test's canary push wrote (stable: an older run's version).
    settings = (config.pipeline_root, config.span_index_uri, config.serving_model_dir,
                str(workspace["root"] / "models.config"), config.model_name)
    before = _artifact_files(ws)
    assert cli.main(["gc", "--workspace", str(ws), "--keep-runs", "0"]) == 1
    assert "keep_runs must be at least 1" in capsys.readouterr().err
    assert cli.main(["gc", "--workspace", str(ws), "--keep-runs", "1", "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("gc: would delete ") and " MB (keeping the newest 1 runs)" in listing
    assert _artifact_files(ws) == before, "a dry run deletes nothing"

    found = gc.plan(ws, *settings, 1)
    assert len(found.doomed) >= 3
    assert {"of the newest 1 runs",
            "of a run that pushed a served or labelled version"} <= set(found.kept), found.kept
    raced, killed_at = found.doomed[0].artifact_id, found.doomed[1].artifact_id

    def racing_run_then_kill(stage: str, artifact_id: int) -> None:
        store = gc.open_store(ws)
        if stage == "marked" and artifact_id == raced:
            # A run starting now reuses the artifact (as a cached step links its outputs).
            context_type = store.get_context_type(gc.RUN_CONTEXT)
            [run] = store.put_contexts([mlmd.Context(type_id=context_type.id,
                                                     name="racing-run")])
            execution_type = store.put_execution_type(mlmd.ExecutionType(name="Racer"))
            [execution] = store.put_executions([mlmd.Execution(
                type_id=execution_type, last_known_state=mlmd.Execution.RUNNING)])
            store.put_attributions_and_associations(
                [mlmd.Attribution(context_id=run, artifact_id=raced)],
                [mlmd.Association(context_id=run, execution_id=execution)])
            store.put_events([mlmd.Event(artifact_id=raced, execution_id=execution,
                                         type=mlmd.Event.INPUT)])
        if stage == "moved" and artifact_id == killed_at:
            raise _Killed()

    with pytest.raises(_Killed):
        gc.run_gc(ws, *settings, 1, dry_run=False, step=racing_run_then_kill)
    states = {a.id: a.state for a in gc.open_store(ws).get_artifacts()}
    after = _artifact_files(ws)
    assert states[raced] == mlmd.Artifact.LIVE and after[raced] == before[raced]
    assert states[killed_at] == mlmd.Artifact.MARKED_FOR_DELETION and after[killed_at] is None
    for artifact_id, files in after.items():
        assert files is None or files == before[artifact_id], "whole or gone, never half"

    resumed = gc.run_gc(ws, *settings, 1, dry_run=False)
    assert killed_at in resumed.resumed and raced not in {d.artifact_id for d in resumed.doomed}
    states = {a.id: a.state for a in gc.open_store(ws).get_artifacts()}
    after = _artifact_files(ws)
    assert mlmd.Artifact.MARKED_FOR_DELETION not in states.values()
    for artifact_id, files in after.items():
        assert (files is None) == (states[artifact_id] == mlmd.Artifact.DELETED), artifact_id
        assert files is None or files == before[artifact_id]
    assert not list((ws / "pipeline_root").rglob(f"*{gc.TRASH_SUFFIX}"))
    assert not list((ws / "pipeline_root").rglob(f"*{gc.REMOVING_SUFFIX}"))
    assert sum(1 for s in states.values() if s == mlmd.Artifact.DELETED) >= 2

    for entry in Path(config.span_index_uri).glob("span-*.json"):
        assert Path(json.loads(entry.read_text())["uri"]).is_dir(), "stored spans stay"
    served = _served_versions(config)[-1].name
    assert cli.main(["lineage", served, "--workspace", str(ws)]) == 0
    assert "Data: spans " in capsys.readouterr().out
    assert cli.main(["report", "--workspace", str(ws), "--out",
                     str(workspace["root"] / "after-gc.html")]) == 0
    assert cli.main(["status", "--workspace", str(ws)]) == 0
