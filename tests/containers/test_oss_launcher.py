"""The compiled pipeline as open-source KFP's driver and launcher run it: every step's real
entry point (pipeline/kubeflow/entrypoint.py) in the pipeline image, `KFP_POD_UID` set, inputs
downloaded from an S3 API on loopback (moto's server) by key prefix into the launcher's mirror
folders, outputs uploaded from them, metadata recorded and handed to the next step as the
driver does (tests/containers/oss_launcher.py cites where each behaviour is read in the backend).

The file is compiled for standalone KFP with MinIO: a `minio://` root, the steps' own s3://
locations (span index, checkpoints) through the endpoint and the Secret the platform config
names, the data and the models on claims mounted only where the platform config says.

The paths kfp.local never takes: the empty first-run artifact (ServedModel with nothing served;
nothing is uploaded and its consumers get no folder at all), sibling prefixes (a consumer of the
Trainer's `…/model` also receives `…/model_run/`), and the output metadata round trip (numbers
come back as doubles, URIs must be the remote ones or nothing is uploaded).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ctpipe.common.layout import MODEL_CARD_FILE
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.kubeflow.pipeline_file import read_pipeline_file
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config
from tests.containers import oss_launcher

pytestmark = [pytest.mark.containers, pytest.mark.e2e]

BUCKET = "ct-kfp"
ROOT = f"minio://{BUCKET}/v2/artifacts"
# As tests/containers/test_pipeline_kfp_local.py: a year's window, small training.
SETTINGS = {"train_steps": 100, "eval_steps": 3, "min_auc": 0.6, "window": 4,
            "trainer": {"steps_per_epoch": 50, "staleness": {"max_vocabulary_gap": 0.15}}}
# Consumers of ServedModel's `model`, by their input key.
SERVED_MODEL_CONSUMERS = {"ConceptDrift": "model", "Trainer": "base_model",
                          "Evaluator": "baseline_model"}
SNAPSHOT_STEPS = {"ExampleGenSnapshot", "SpanWindowSnapshot", "ServedModelSnapshot"}


@pytest.fixture(scope="module")
def oss(pipeline_image, s3_server, small_source, tmp_path_factory):
    """The compiled file and a namespace: bucket, Secret, claims; spans 1-4 arrived."""
    work = tmp_path_factory.mktemp("oss")
    spans = work / "spans"
    data.prepare(spans, small_source)
    cluster = oss_launcher.standalone_cluster(work, pipeline_image, s3_server["client"], BUCKET)
    for span in (1, 2, 3, 4):
        shutil.copytree(spans / f"span-{span}", cluster.claims["taxi-data"] / f"span-{span}")
    settings = {**SETTINGS, **oss_launcher.standalone_settings(s3_server["endpoint"])}
    settings["kubernetes"]["artifact_scratch_gib"] = {"Trainer": 1}
    (work / "kubeflow.yaml").write_text(yaml.safe_dump(settings))
    compile_pipeline(kubeflow_config(work / "kubeflow.yaml", ROOT), pipeline_image,
                     work / "pipeline.yaml")
    spec, platform = read_pipeline_file(work / "pipeline.yaml")
    return {"cluster": cluster, "spec": spec, "platform": platform, "spans": spans,
            "claims": cluster.claims, "runs": []}


def _run(oss) -> dict[str, oss_launcher.TaskRun]:
    tasks = oss_launcher.PipelineRun(oss["cluster"], oss["spec"], oss["platform"], ROOT).run()
    oss["runs"].append(tasks)
    return tasks


def _versions(oss) -> list[Path]:
    folder = oss["claims"]["big-tipper-models"] / "big_tipper"
    return sorted(p for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def _mirror_path(uri: str) -> str:
    return oss_launcher.local_path_for_uri(uri).lstrip("/")


def test_a_first_run_pushes_through_the_empty_served_model(oss):
    tasks = _run(oss)

    (version,) = _versions(oss)
    assert (version / "saved_model.pb").is_file()
    served = tasks["ServedModel"]
    assert served.uploaded["model"] == [], "an empty folder uploads nothing"
    assert served.outputs["model"].custom_properties["found"] == 0.0
    for consumer, key in SERVED_MODEL_CONSUMERS.items():
        run = tasks[consumer]
        assert not run.cached
        assert run.executor_input["inputs"]["artifacts"][key]["artifacts"][0]["uri"] == \
            served.outputs["model"].uri
        assert run.downloaded[key] == [], f"{consumer} got no folder for the served model"
    card = json.loads((version / MODEL_CARD_FILE).read_text())
    assert card["origin"] == "scratch", "no base model: nothing was served"


def test_a_consumer_of_the_model_also_receives_its_sibling_model_run(oss):
    """TFX's Trainer hands its run function `…/model_run`, where ours writes TensorBoard logs
    (models/tensorboard.py). A consumer of `…/model` downloads them too, beside the model at
    their own mirror path (DownloadBlob of KFP 2.2-2.16 lists the key as a prefix), and still
    works on the model alone."""
    first = oss["runs"][0]
    trainer = first["Trainer"]
    assert trainer.uploaded["model"] and trainer.uploaded["model_run"]
    model = _mirror_path(trainer.outputs["model"].uri)
    # A namespace with nothing cached yet, so that the step runs rather than being reused.
    fresh = dataclasses.replace(oss["cluster"], cache={})
    task = oss_launcher.PipelineRun(fresh, oss["spec"], oss["platform"], ROOT,
                                    done=first).run_task("InfraValidation")

    files = task.downloaded["model"]
    siblings = [f for f in files if not f.startswith(model + "/")]
    assert siblings, "the prefix download also brings the sibling model_run"
    assert all(f.startswith(f"{model}_run/") for f in siblings), siblings
    assert task.outputs["blessing"].custom_properties["blessed"] == 1.0


def test_output_metadata_round_trips_through_the_metadata_store(oss):
    tasks = oss["runs"][0]
    example_gen = tasks["ExampleGen"]
    written = example_gen.executor_output["artifacts"]["examples"]["artifacts"][0]
    # TFX writes a custom property named like one of the type's properties as `custom:<name>`
    # (kubeflow_v2_entrypoint_utils) and reads it back so.
    assert written["metadata"]["custom:span"] == 4
    assert example_gen.outputs["examples"].custom_properties["custom:span"] == 4.0
    statistics_input = tasks["StatisticsGen"].executor_input["inputs"]["artifacts"]["examples"]
    assert statistics_input["artifacts"][0]["metadata"]["custom:span"] == 4.0
    # TFX read the span back as an int: the window ends at span 4 and holds 1-4.
    window = tasks["SpanWindow"].outputs["window_examples"]
    assert window.custom_properties["window_spans"] == "1-4"
    for task in tasks.values():
        for key, artifact in task.outputs.items():
            # The entry point put the remote URIs back: a mirror path would not be uploaded.
            provisioned = task.executor_input["outputs"]["artifacts"][key]["artifacts"][0]["uri"]
            assert artifact.uri == provisioned, (task.name, key)


def test_a_new_span_warm_starts_from_the_served_model_handed_over_by_the_launcher(oss):
    (served,) = _versions(oss)
    shutil.copytree(oss["spans"] / "span-5", oss["claims"]["taxi-data"] / "span-5")
    tasks = _run(oss)

    model = tasks["ServedModel"].outputs["model"]
    assert model.custom_properties["found"] == 1.0
    assert model.custom_properties["served_version"] == float(served.name)
    assert tasks["ServedModel"].uploaded["model"]
    for consumer, key in SERVED_MODEL_CONSUMERS.items():
        assert tasks[consumer].downloaded[key], consumer
    versions = _versions(oss)
    assert len(versions) == 2
    card = json.loads((versions[-1] / MODEL_CARD_FILE).read_text())
    assert card["origin"] == f"warm start from served version {served.name}"
    assert card["window_spans"] == "2-5"


def test_a_rerun_with_no_new_data_runs_only_the_snapshot_steps(oss):
    """KFP's cache (driver.go Container: fingerprint of input artifact ids and parameter
    values): with the data folder, the span index and the served model as before, the snapshot
    steps hand over the same values, and every other step is reused, down to the Pusher."""
    versions = _versions(oss)
    tasks = _run(oss)

    assert {name for name, task in tasks.items() if not task.cached} == SNAPSHOT_STEPS
    previous = oss["runs"][-2]
    assert tasks["Pusher"].outputs == previous["Pusher"].outputs, "the same artifacts"
    assert _versions(oss) == versions, "nothing pushed again"
