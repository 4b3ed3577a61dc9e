"""The container entry point with ExecutorInputs shaped like open-source KFP's driver hands them
over, and like Vertex AI's: a real TFX executor (ExampleValidator) runs behind it.

Open-source shape (read in kubeflow/pipelines backend/src/v2: driver.go provisionOutputs,
metadata/converter.go toRuntimeArtifact, component/launcher_v2.go LocalPathForURI): inputs
resolved from KFP's metadata carry no schema title (or `system.Artifact`) and their properties
flattened into `metadata`, numbers as floats; an `executor-logs` output of type
`system.Artifact` is added; URIs are under a `minio://` root and the launcher has mirrored them
under /minio/ (here: under a temporary mirror root).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
import yaml
from tensorflow_metadata.proto.v0 import anomalies_pb2

from ctpipe.common import storage
from ctpipe.common.errors import UserError
from ctpipe.components.curated_schema.executor import parse_schema
from ctpipe.pipeline.kubeflow import entrypoint as kfp_entrypoint
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config
from ctpipe.validation.drift import statistics_of_examples

ROOT = "minio://mlpipeline/v2/artifacts"
TASK = "ExampleValidator"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compiled")
    (folder / "kfp.yaml").write_text(yaml.safe_dump({"data_root": "s3://b/spans",
                                                     "serving_root": "s3://b/serving"}))
    return compile_pipeline(kubeflow_config(folder / "kfp.yaml", ROOT), "img", folder / "p.json")


def _argv(spec: dict, invocation: dict) -> list[str]:
    args = list(spec["deploymentSpec"]["executors"][f"{TASK}_executor"]["container"]["args"])
    args[args.index("--json_serialized_invocation_args") + 1] = json.dumps(invocation)
    return args


def _inputs_spec(spec: dict, invocation: dict) -> dict:
    args = _argv(spec, invocation)
    return json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])


def _parameters(spec: dict, task_name: str = TASK) -> dict:
    """The task's parameter values as the driver resolves them: constants, and the runtime
    parameters' defaults."""
    task = spec["root"]["dag"]["tasks"][task_name]
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    return {name: (value["runtimeValue"]["constant"] if "runtimeValue" in value
                   else defaults[value["componentInputParameter"]]["defaultValue"])
            for name, value in task["inputs"]["parameters"].items()}


def _statistics_and_schema(base: Path) -> tuple[Path, Path]:
    """Real statistics (text in the numeric 'fare': a type anomaly) and the curated schema."""
    example = tf.train.Example()
    example.features.feature["fare"].bytes_list.value.append(b"many")
    example.features.feature["trip_miles"].float_list.value.append(1.5)
    example.features.feature["payment_type"].bytes_list.value.append(b"Cash")
    statistics = base / "statistics"
    for split in ("train", "eval"):
        target = statistics / f"Split-{split}"
        target.mkdir(parents=True)
        (target / "FeatureStats.pb").write_bytes(statistics_of_examples(
            [example.SerializeToString()] * 5, _schema()).SerializeToString())
    schema = base / "schema"
    schema.mkdir(parents=True)
    shutil.copy(Path(__file__).parents[3] / "schemas" / "schema.pbtxt", schema / "schema.pbtxt")
    return statistics, schema


def _schema():
    return parse_schema((Path(__file__).parents[3] / "schemas" / "schema.pbtxt").read_text())


def _oss_invocation(spec: dict, outputs_dir: Path) -> dict:
    outputs = spec["components"][TASK]["outputDefinitions"]["artifacts"]
    run = f"{ROOT}/taxi-big-tipper/0f1e2d3c"
    return {
        "inputs": {
            "parameterValues": _parameters(spec),
            "artifacts": {
                "statistics": {"artifacts": [{
                    "name": "17", "uri": f"{run}/SpanWindow/statistics",
                    "type": {"schemaTitle": "system.Artifact"},
                    "metadata": {"split_names": '["train", "eval"]', "span": 6.0,
                                 "display_name": "statistics",
                                 "store_session_info": '{"Provider": "minio"}'}}]},
                "schema": {"artifacts": [{
                    "name": "18", "uri": f"{run}/CuratedSchema/schema",
                    "type": {"instanceSchema": ""}, "metadata": {}}]},
            }},
        "outputs": {
            "artifacts": {
                "anomalies": {"artifacts": [{
                    "name": "anomalies", "uri": f"{run}/{TASK}/anomalies",
                    "type": outputs["anomalies"]["artifactType"]}]},
                "executor-logs": {"artifacts": [{
                    "name": "executor-logs", "uri": f"{run}/{TASK}/executor-logs",
                    "type": {"schemaTitle": "system.Artifact"}}]},
            },
            "outputFile": str(outputs_dir / "output_metadata.json"),
        },
    }


def test_open_source_shapes_are_adapted_and_the_executor_output_names_remote_uris(
        compiled, tmp_path):
    mirror = tmp_path / "mirror"
    invocation = _oss_invocation(compiled, tmp_path / "kfp_outputs")
    made = dict(zip(("statistics", "schema"), _statistics_and_schema(tmp_path / "made")))
    for key, folder in made.items():  # what the launcher downloaded before the step
        uri = invocation["inputs"]["artifacts"][key]["artifacts"][0]["uri"]
        local = Path(storage.local_mirror(uri, str(mirror)))
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, local)

    kfp_entrypoint.run(_argv(compiled, invocation), environ={"KFP_POD_UID": "pod"},
                       mirror_root=str(mirror))

    anomalies_uri = invocation["outputs"]["artifacts"]["anomalies"]["artifacts"][0]["uri"]
    written = Path(storage.local_mirror(anomalies_uri, str(mirror)))
    anomalies = anomalies_pb2.Anomalies.FromString(
        (written / "Split-train" / "SchemaDiff.pb").read_bytes())
    assert "fare" in anomalies.anomaly_info, "TFX's executor ran on the mirrored inputs"
    output = json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())
    (artifact,) = output["artifacts"]["anomalies"]["artifacts"]
    assert artifact["uri"] == anomalies_uri, "the launcher records the remote URI"
    assert "executor-logs" not in output["artifacts"], "the launcher writes that one itself"


def test_adaptation_restores_types_mirrors_uris_and_drops_the_launchers_output(compiled):
    invocation = _oss_invocation(compiled, Path("/tmp/out"))
    inputs_spec = _inputs_spec(compiled, invocation)
    adapted = kfp_entrypoint.adapt_executor_input(invocation, inputs_spec, "/m")
    statistics = adapted["inputs"]["artifacts"]["statistics"]["artifacts"][0]
    assert "tfx.ExampleStatistics" in statistics["type"]["instanceSchema"]
    assert statistics["uri"] == "/m/minio/mlpipeline/v2/artifacts/taxi-big-tipper/0f1e2d3c/" \
                                "SpanWindow/statistics"
    assert statistics["metadata"]["span"] == 6.0, "properties pass through to TFX's parser"
    assert "tfx.Schema" in adapted["inputs"]["artifacts"]["schema"]["artifacts"][0]["type"][
        "instanceSchema"]
    assert set(adapted["outputs"]["artifacts"]) == {"anomalies"}
    assert invocation["inputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"].startswith(
        "minio://"), "the caller's invocation is left as it was"


@pytest.mark.parametrize("uri, mirrored", [
    ("gs://bucket/root/a", "/gcs/bucket/root/a"),
    ("s3://bucket/root/a", "/s3/bucket/root/a"),
    ("minio://mlpipeline/v2/a", "/minio/mlpipeline/v2/a"),
    ("/local/path", None),
])
def test_mirror_paths_follow_the_launchers_rule_both_ways(uri, mirrored):
    assert storage.local_mirror(uri) == mirrored
    if mirrored:
        assert storage.remote_uri(mirrored) == uri


def test_vertex_invocations_pass_through(compiled, tmp_path):
    """Vertex hands TFX types and URIs TFX opens itself: nothing is changed."""
    made_statistics, made_schema = _statistics_and_schema(tmp_path / "made")
    invocation = _oss_invocation(compiled, tmp_path / "out")
    declared = _inputs_spec(compiled, invocation)
    for key, folder in (("statistics", made_statistics), ("schema", made_schema)):
        artifact = invocation["inputs"]["artifacts"][key]["artifacts"][0]
        artifact["uri"] = str(folder)
        artifact["type"] = declared["artifacts"][key]["artifactType"]
    del invocation["outputs"]["artifacts"]["executor-logs"]
    anomalies = invocation["outputs"]["artifacts"]["anomalies"]["artifacts"][0]
    anomalies["uri"] = str(tmp_path / "anomalies")

    kfp_entrypoint.run(_argv(compiled, invocation), environ={})

    assert (tmp_path / "anomalies" / "Split-eval" / "SchemaDiff.pb").is_file()
    output = json.loads((tmp_path / "out" / "output_metadata.json").read_text())
    assert output["artifacts"]["anomalies"]["artifacts"][0]["uri"] == str(tmp_path / "anomalies")


def test_kfp_local_shapes_get_their_types_but_keep_their_paths(compiled):
    """KFP's local orchestrator hands upstream outputs over as `system.Artifact` with local
    paths, and sets no KFP_POD_UID: types are restored, paths left as they are."""
    invocation = _oss_invocation(compiled, Path("/tmp/out"))
    adapted = kfp_entrypoint.adapt_executor_input(invocation,
                                                  _inputs_spec(compiled, invocation), None)
    statistics = adapted["inputs"]["artifacts"]["statistics"]["artifacts"][0]
    assert "tfx.ExampleStatistics" in statistics["type"]["instanceSchema"]
    assert statistics["uri"] == invocation["inputs"]["artifacts"]["statistics"]["artifacts"][0][
        "uri"]


# In a fresh interpreter: open an s3:// location before and after the entry point registers the
# step's file systems (nothing else imported: TFX's v2 entry point would load tensorflow-io as a
# side effect, through TFMA).
OPEN_S3 = r"""
import json, sys
import tensorflow as tf
from ctpipe.common import storage
from ctpipe.pipeline.kubeflow import entrypoint as kfp_entrypoint

executor_input, probe = json.loads(sys.argv[1]), sys.argv[2]
try:
    tf.io.gfile.exists(probe)
    before = "opened"
except tf.errors.UnimplementedError as error:
    before = str(error).splitlines()[0]
storage.register_filesystems(kfp_entrypoint.step_locations(executor_input))
print(json.dumps({"before": before, "after": tf.io.gfile.exists(probe)}))
storage.exit_process(0)  # tensorflow-io's S3 file system aborts a normal exit
"""


def test_the_trainers_checkpoint_root_inside_its_custom_config_is_registered(
        compiled, s3_server, tmp_path):
    """The Trainer's only s3:// location is its checkpoint root, inside the custom_config JSON
    parameter (the artifacts are the launcher's local mirrors)."""
    parameters = _parameters(compiled, "Trainer")
    root = json.loads(parameters["custom_config"])["trainer_options"]["checkpoints"]["root"]
    assert root == "s3://mlpipeline/v2/artifacts/checkpoints"
    assert not [v for k, v in parameters.items() if k != "custom_config" and "s3://" in str(v)]
    s3_server["client"].create_bucket(Bucket="mlpipeline")
    s3_server["client"].put_object(Bucket="mlpipeline", Key="v2/artifacts/checkpoints/marker",
                                   Body=b"1")
    executor_input = {
        "inputs": {"parameterValues": parameters,
                   "artifacts": {"examples": {"artifacts": [{"uri": str(tmp_path / "ex")}]}}},
        "outputs": {"artifacts": {"model": {"artifacts": [{"uri": str(tmp_path / "model")}]}},
                    "outputFile": str(tmp_path / "out.json")}}
    assert kfp_entrypoint.step_locations(executor_input) == sorted(
        [root, str(tmp_path / "ex"), str(tmp_path / "model")])
    done = subprocess.run(
        [sys.executable, "-c", OPEN_S3, json.dumps(executor_input), f"{root}/marker"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, **s3_server["environment"]})
    assert done.returncode == 0, done.stderr[-3000:]
    opened = json.loads(done.stdout.splitlines()[-1])
    assert "scheme 's3' not implemented" in opened["before"]
    assert opened["after"] is True


def test_a_location_no_file_system_opens_is_named():
    with pytest.raises(UserError, match=r"no TensorFlow file system opens "
                                                       r"hdfs2:// \(e\.g\. hdfs2://nn/data\)"):
        storage.register_filesystems(["/local", "hdfs2://nn/data"])


def test_locations_include_uris_inside_json_settings():
    custom_config = json.dumps({"trainer_options": {"checkpoints": {"root": "s3://b/ckpt"}},
                                "code_version": "abc"})
    assert storage.locations_in({"custom_config": custom_config, "n": 3, "text": "a b",
                                 "serving": "/models/x", "flag": "--x=/y"}) == [
        "/models/x", "s3://b/ckpt"]


def test_the_folders_of_local_outputs_are_made_as_the_launcher_makes_them(tmp_path):
    """kfp.local hands a value artifact's URI in a folder that does not exist yet."""
    value = tmp_path / "run" / "leGenSnapshot" / "snapshot"
    executor_input = {"outputs": {"artifacts": {
        "snapshot": {"artifacts": [{"uri": str(value)}]},
        "remote": {"artifacts": [{"uri": "gs://bucket/run/task/model"}]}}}}
    kfp_entrypoint.prepare_output_parents(executor_input)
    assert value.parent.is_dir() and not value.exists()


def test_a_value_handed_on_as_a_parameter_is_listed_as_the_parameter_only():
    """TFX lists a snapshot step's String both as the artifact and as the output parameter
    `snapshot`; kfp.local would hand the consumer the artifact."""
    written = {"artifacts": {"snapshot": {"artifacts": [{"uri": "/minio/b/run/s/snapshot"}]},
                             "model": {"artifacts": [{"uri": "/minio/b/run/t/model"}]}},
               "parameterValues": {"snapshot": '{"span": 4}'}}
    for mirror_root, model_uri in ((None, "/minio/b/run/t/model"), ("/", "minio://b/run/t/model")):
        restored = kfp_entrypoint.restore_executor_output(written, mirror_root)
        assert set(restored["artifacts"]) == {"model"}
        assert restored["parameterValues"] == {"snapshot": '{"span": 4}'}
        assert restored["artifacts"]["model"]["artifacts"][0]["uri"] == model_uri
