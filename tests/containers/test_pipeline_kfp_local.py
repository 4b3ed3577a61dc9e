"""The compiled pipeline, as `ctpipe compile` writes it, run end to end by KFP's own local
orchestrator (kfp.local, DockerRunner on podman): every task in the project image, only
`container` executors, no lifecycle hooks, no caching between runs. Continuous training as on a
cluster: a small window pushes a model; a new span arrives and the next run evaluates against
that model and warm-starts from it; a bad span stops the run before the Trainer.

Everything the steps read or write is under the pipeline root, the one folder kfp.local mounts
into each container (data, span index, checkpoints, serving folder).
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ctpipe.common.layout import MODEL_CARD_FILE, PUSH_RECORD_FILE
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config

pytestmark = [pytest.mark.containers, pytest.mark.e2e]

# A window of a whole year (no month the served model has not seen), and a staleness limit for
# spans of ~300 trips, whose long-tailed vocabularies (census tracts) differ more by chance than
# real quarters' do (docs/trainer.md).
SETTINGS = {"train_steps": 100, "eval_steps": 3, "min_auc": 0.6, "window": 4,
            "trainer": {"steps_per_epoch": 50, "staleness": {"max_vocabulary_gap": 0.15}}}


@pytest.fixture(scope="module")
def cluster(kfp_docker, small_source, tmp_path_factory):
    """A compiled pipeline and a data folder under the pipeline root, spans 1-4 arrived."""
    root = Path(kfp_docker.pipeline_root)
    spans = tmp_path_factory.mktemp("spans")
    data.prepare(spans, small_source)
    incoming = root / "data"
    for span in (1, 2, 3, 4):
        shutil.copytree(spans / f"span-{span}", incoming / f"span-{span}")
    config_file = root / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, "data_root": str(incoming),
                                           "serving_root": str(root / "serving")}))
    package = root / "pipeline.json"
    config = kubeflow_config(config_file, str(root))
    compile_pipeline(config, kfp_docker.image, package)
    return {"kfp": kfp_docker, "package": package, "spans": spans, "incoming": incoming,
            "config": config, "root": root}


def _versions(config) -> list[Path]:
    folder = Path(config.serving_model_dir)
    return sorted(p for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def _newest_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("taxi-big-tipper-")]
    return max(runs, key=lambda p: p.stat().st_mtime)


def test_a_small_window_pushes_a_model(cluster):
    cluster["kfp"].run_pipeline(cluster["package"])
    (version,) = _versions(cluster["config"])
    assert (version / "saved_model.pb").is_file()
    (manifest,) = _newest_run(cluster["root"]).glob("*/window_examples/window.json")
    assert [s["span"] for s in json.loads(manifest.read_text())["spans"]] == [1, 2, 3, 4], \
        "the window of 4 spans, assembled from per-span artifacts"


def test_a_new_span_is_evaluated_against_and_warm_started_from_the_served_model(cluster):
    (served,) = _versions(cluster["config"])
    shutil.copytree(cluster["spans"] / "span-5", cluster["incoming"] / "span-5")
    cluster["kfp"].run_pipeline(cluster["package"])
    versions = _versions(cluster["config"])
    assert len(versions) == 2, "the candidate was blessed and pushed"
    card = json.loads((versions[-1] / MODEL_CARD_FILE).read_text())
    assert card["origin"] == f"warm start from served version {served.name}"
    assert card["window_spans"] == "2-5"
    record = json.loads((versions[-1] / PUSH_RECORD_FILE).read_text())
    assert "baseline_auc" in record, "the Evaluator compared it with the served model"


def test_a_bad_span_stops_the_run_before_the_trainer(cluster):
    with (cluster["spans"] / "span-6" / "data.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    rows[2]["fare"] = "twelve dollars"
    target = cluster["incoming"] / "span-6" / "data.csv"
    target.parent.mkdir()
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    before = _versions(cluster["config"])
    with pytest.raises(RuntimeError, match="ValidationGate"):
        cluster["kfp"].run_pipeline(cluster["package"])
    assert _versions(cluster["config"]) == before, "nothing pushed"
    assert not list(_newest_run(cluster["root"]).glob("*/model_run")), "no Trainer ran"
