"""The Kubeflow compile, read back with KFP's own PipelineSpec proto."""
from __future__ import annotations

import importlib
import json

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from ctpipe.pipeline.config import ConfigError
from ctpipe.pipeline.kubeflow.pipeline_file import (
    DATA_ROOT_PARAMETER,
    ENTRYPOINT_COMMAND,
    SPAN_PARAMETER,
    TRAIN_ARGS_PARAMETER,
)
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config, unrunnable_executors
from ctpipe.pipeline.pipeline import OUTSIDE_STATE_STEPS, create_pipeline

IMAGE = "registry.example.com/ctpipe:test"
ROOT = "minio://mlpipeline/v2/artifacts"
SETTINGS = {"data_root": "gs://bucket/spans", "serving_root": "gs://bucket/serving",
            "train_steps": 321,
            "step_resources": {"Trainer": {"cpu_limit": 3, "memory_limit_gib": 6}}}


def _compiled(tmp_path, **changes):
    config_file = tmp_path / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, **changes}))
    config = kubeflow_config(config_file, ROOT)
    output = tmp_path / "pipeline.json"
    compile_pipeline(config, IMAGE, output)
    text = json.loads(output.read_text())
    return config, json_format.ParseDict(text, pipeline_spec_pb2.PipelineSpec()), text


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("kfp"))


def _executors(spec) -> dict:
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def test_only_what_open_source_kfp_runs(compiled):
    """The backend's argo compiler implements container and importer executors only, and
    nothing in it reads lifecycle hooks (backend/src/v2/compiler/argocompiler)."""
    _, spec, text = compiled
    assert unrunnable_executors(text) == []
    for name, executor in _executors(spec).items():
        assert list(executor) == ["container"], name
        assert "lifecycle" not in executor["container"], name


def test_unrunnable_executors_are_named():
    spec = {"deploymentSpec": {"executors": {
        "a": {"resolver": {}}, "b": {"container": {"lifecycle": {"preCacheCheck": {}}}},
        "c": {"container": {}}, "d": {"importer": {}}}}}
    assert unrunnable_executors(spec) == ["executor a is a resolver",
                                          "executor b has a lifecycle hook"]


def test_every_component_is_a_task_with_its_upstream_edges(compiled):
    config, spec, _ = compiled
    tasks = spec.root.dag.tasks
    for node in create_pipeline(config).components:
        assert node.id in tasks
        # The outside-state steps also wait for their snapshot steps.
        snapshot = {f"{node.id}Snapshot"} if node.id in OUTSIDE_STATE_STEPS else set()
        assert set(tasks[node.id].dependent_tasks) == {u.id for u in node.upstream_nodes} | \
            snapshot, node.id
    assert "ValidationGate" in tasks["Trainer"].dependent_tasks
    assert {"Evaluator", "InfraValidation"} <= set(tasks["Pusher"].dependent_tasks)


def test_every_step_runs_our_entrypoint_in_the_image_and_its_executor_imports(compiled):
    _, spec, _ = compiled
    for container in (executor["container"] for executor in _executors(spec).values()):
        assert container["image"] == IMAGE
        assert container["command"] == list(ENTRYPOINT_COMMAND)
        importlib.import_module(container["command"][-1])
        args = container["args"]
        assert "--json_serialized_inputs_spec_args" in args  # the entry point restores types
        class_path = args[args.index("--executor_class_path") + 1]
        module_name, _, class_name = class_path.rpartition(".")
        assert hasattr(importlib.import_module(module_name), class_name), class_path


def test_per_run_values_are_runtime_parameters_with_the_configured_defaults(compiled):
    _, spec, _ = compiled
    parameters = spec.root.input_definitions.parameters
    assert parameters[DATA_ROOT_PARAMETER].default_value.string_value == "gs://bucket/spans"
    assert json.loads(parameters[TRAIN_ARGS_PARAMETER].default_value.string_value) == {
        "num_steps": 321}
    assert parameters[SPAN_PARAMETER].default_value.number_value == 0
    tasks = spec.root.dag.tasks
    for task, parameter in (("ExampleGen", "input_base"), ("SpanWindow", "data_root")):
        assert (tasks[task].inputs.parameters[parameter].component_input_parameter
                == DATA_ROOT_PARAMETER), task
    assert (tasks["ExampleGen"].inputs.parameters["requested_span"].component_input_parameter
            == SPAN_PARAMETER)
    assert (tasks["Trainer"].inputs.parameters["train_args"].component_input_parameter
            == TRAIN_ARGS_PARAMETER)
    assert spec.default_pipeline_root == ROOT


def test_cluster_settings_reach_the_file(compiled):
    config, spec, _ = compiled
    trainer = _executors(spec)["Trainer_executor"]["container"]
    # The quantity (drivers from 2.4) and the float in G (drivers before), as kfp writes them.
    assert trainer["resources"] == {"cpuLimit": 3.0, "resourceCpuLimit": "3",
                                    "memoryLimit": 6 * 2**30 / 1e9, "resourceMemoryLimit": "6Gi"}
    assert "resources" not in _executors(spec)["Evaluator_executor"]["container"]
    assert "--direct_running_mode=multi_processing" in trainer["args"]
    tasks = spec.root.dag.tasks
    # A minio:// root: the steps open the span index through MinIO's S3 API.
    span_window = tasks["SpanWindow"].inputs.parameters["span_index"]
    assert span_window.runtime_value.constant.string_value == "s3://mlpipeline/v2/artifacts/span-index"
    # The curated schema travels in the file: no path inside the image is needed.
    schema = tasks["ImportSchemaGen"].inputs.parameters["schema_text"]
    assert schema.runtime_value.constant.string_value == config.curated_schema


def test_snapshot_steps_are_never_cached_the_others_follow_the_configuration(tmp_path,
                                                                              compiled):
    snapshots = {f"{step}Snapshot" for step in OUTSIDE_STATE_STEPS}
    for (_, spec, _), cached in ((compiled, True), (_compiled(tmp_path, enable_cache=False)[:3],
                                                    False)):
        assert snapshots <= set(spec.root.dag.tasks)
        for name, task in spec.root.dag.tasks.items():
            expected = cached and name not in snapshots
            assert task.caching_options.enable_cache == expected, name


def test_outside_state_reaches_the_cache_key_as_a_parameter(compiled):
    """KFP's cache key holds input parameter values (backend/src/v2/cacheutils/cache.go
    GenerateCacheKey): each outside-state step takes its snapshot step's output parameter, by
    the producer's task name (the driver resolves it so: driver.go resolveInputs)."""
    _, spec, _ = compiled
    tasks = spec.root.dag.tasks
    for step in OUTSIDE_STATE_STEPS:
        snapshot = tasks[step].inputs.parameters["snapshot"].task_output_parameter
        assert (snapshot.producer_task, snapshot.output_parameter_key) == (
            f"{step}Snapshot", "snapshot"), step
        producer = spec.components[tasks[snapshot.producer_task].component_ref.name]
        assert "snapshot" in producer.output_definitions.parameters
    # The window's snapshot takes the span ExampleGen will ingest as a parameter, not its
    # examples, which the launcher would download whole.
    window = tasks["SpanWindowSnapshot"]
    assert not window.inputs.artifacts
    assert window.inputs.parameters["ingested"].task_output_parameter.producer_task == \
        "ExampleGenSnapshot"


def test_minio_is_refused_where_the_steps_open_files_themselves(tmp_path):
    config_file = tmp_path / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, "data_root": "minio://mlpipeline/spans"}))
    with pytest.raises(ConfigError, match="'data_root'.*s3://mlpipeline/spans.*S3_ENDPOINT"):
        kubeflow_config(config_file, ROOT)


def test_missing_settings_say_how_to_give_them(tmp_path):
    with pytest.raises(ConfigError, match="'data_root' is required: set data_root .* --config"):
        kubeflow_config(None, ROOT)


def test_a_failed_compile_leaves_the_previous_file(tmp_path, compiled):
    config, _, _ = compiled
    output = tmp_path / "pipeline.json"
    output.write_text("previous")
    with pytest.raises(ConfigError, match="image"):
        compile_pipeline(config, "", output)
    assert output.read_text() == "previous"


def test_tracking_is_the_last_step_never_cached_and_holds_no_credential(tmp_path):
    _, spec, text = _compiled(tmp_path, tracking={"uri": "http://mlflow.example:5000"})
    track = spec.root.dag.tasks["TrackRun"]
    assert {"Pusher", "Evaluator", "Trainer", "SpanWindow", "ValidationGate",
            "ConceptDrift"} <= set(track.dependent_tasks)
    assert not track.caching_options.enable_cache, "a cached step would log nothing"
    parameters = {name: value.runtime_value.constant.string_value
                  for name, value in track.inputs.parameters.items()}
    assert parameters["tracking_uri"] == "http://mlflow.example:5000"
    assert parameters["outbox"] == "s3://mlpipeline/v2/artifacts/tracking-outbox"
    assert json.loads(parameters["configuration"])["tracking"]["uri"] == parameters["tracking_uri"]
    assert "MLFLOW_TRACKING" not in json.dumps(text), "credentials come from the pod's environment"
    assert unrunnable_executors(text) == []


def test_tracking_on_kubeflow_needs_a_server(tmp_path):
    config_file = tmp_path / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, "tracking": True}))
    with pytest.raises(ConfigError, match="'tracking' on Kubeflow needs a tracking server"):
        kubeflow_config(config_file, ROOT)
