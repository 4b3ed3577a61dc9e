"""End to end with TFX's LocalDagRunner on a small slice of the real data.

One module-scoped workspace: the first run trains and pushes; later tests re-run it unchanged
(fully cached) and feed it an anomalous span (stopped before the Trainer, nothing pushed).
"""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ctpipe import cli, data, status
from models import features
from pipeline.config import PipelineConfig, local_config
from pipeline.local_runner import run_local

pytestmark = pytest.mark.e2e

SMALL = dict(train_steps=120, steps_per_epoch=40, eval_steps=5, min_auc=0.6)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_source):
    root = tmp_path_factory.mktemp("e2e")
    data.prepare(root / "all-spans", small_source)
    incoming = root / "incoming"
    incoming.mkdir()
    for span in (1, 2, 3):
        shutil.copytree(root / "all-spans" / f"span-{span}", incoming / f"span-{span}")
    config = local_config(root / "ws", incoming, PipelineConfig(**SMALL))
    events = run_local(config, root / "ws")
    return {"root": root, "config": config, "events": events}


def _served_versions(config) -> list[Path]:
    return sorted(Path(config.serving_model_dir).iterdir())


def test_first_run_pushes_a_model_that_scores_serialized_examples(workspace):
    config = workspace["config"]
    assert {e.state for e in workspace["events"]} <= {"executed", "resolved"}
    versions = _served_versions(config)
    assert len(versions) == 1 and versions[0].name.isdigit()
    assert (versions[0] / "saved_model.pb").is_file()

    with (workspace["root"] / "all-spans" / "span-4" / "data.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    serialized, labels = [], []
    for row in rows:
        example = tf.train.Example()
        for feature in features.FEATURES:  # raw columns as a client sends them, no label
            value = row[feature.name]
            if value == "":
                continue
            target = example.features.feature[feature.name]
            if feature.dtype == "string":
                target.bytes_list.value.append(value.encode())
            elif feature.dtype == "int64":
                target.int64_list.value.append(int(value))
            else:
                target.float_list.value.append(float(value))
        serialized.append(example.SerializeToString())
        labels.append(int(row[features.LABEL]))

    signature = tf.saved_model.load(str(versions[0])).signatures["serving_default"]
    scores = signature(**{features.EXAMPLES_KEY: tf.constant(serialized)})[
        features.PREDICTION_KEY].numpy()
    assert scores.shape == (len(rows),)
    auc = tf.keras.metrics.AUC()
    auc.update_state(np.array(labels), scores)
    assert auc.result().numpy() > 0.75, "the pushed model must rank unseen trips well"

    report = status.format_status(workspace["root"] / "ws")
    assert "succeeded" in report and "spans 1-3" in report
    assert f"version {versions[0].name}" in report


def test_second_identical_run_is_fully_cached(workspace):
    config = workspace["config"]
    before = _tree_digest(Path(config.serving_root))
    events = run_local(config, workspace["root"] / "ws")
    states = {e.component: e.state for e in events}
    assert states.pop("latest_blessed_model_resolver") == "resolved"
    assert states.pop("warm_start_model_resolver") == "resolved"
    assert set(states.values()) == {"cached"}, states
    assert {"ExampleGen", "Trainer", "Evaluator", "Pusher"} <= set(states)
    assert _tree_digest(Path(config.serving_root)) == before


def test_anomalous_span_stops_the_run_before_training(workspace, capsys):
    config = workspace["config"]
    root = workspace["root"]
    with (root / "all-spans" / "span-4" / "data.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    rows[3]["fare"] = "twelve dollars"  # a numeric column holding text
    bad = root / "incoming" / "span-4"
    bad.mkdir()
    with (bad / "data.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    before = _tree_digest(Path(config.serving_root))

    code = cli.main(["run", "--data", str(root / "incoming"), "--workspace", str(root / "ws"),
                     "--train-steps", str(config.train_steps), "--config",
                     str(_config_file(root, config))])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1, err
    assert "ValidationGate failed" in err[0] and "'fare'" in err[0] and "span 4" in err[0]
    assert _tree_digest(Path(config.serving_root)) == before
    runs = status.WorkspaceStatus(root / "ws").runs(1)
    assert runs[0].state == "failed" and "Trainer" not in runs[0].nodes


def _config_file(root: Path, config: PipelineConfig) -> Path:
    path = root / "small.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in SMALL.items()))
    return path
