"""The Kubeflow compile, read back with KFP's own PipelineSpec proto."""
from __future__ import annotations

import importlib
import json

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.dsl.components.common.resolver import Resolver

from pipeline.config import ConfigError
from pipeline.kubeflow_runner import (DATA_ROOT_PARAMETER, IMAGE_SCHEMA_PATH,
                                      TRAIN_ARGS_PARAMETER, compile_pipeline, kubeflow_config)
from pipeline.pipeline import create_pipeline

IMAGE = "registry.example.com/ctpipe:test"
ROOT = "gs://bucket/root"
SETTINGS = {"data_root": "gs://bucket/spans", "serving_root": "gs://bucket/serving",
            "train_steps": 321, "trainer_cpu_limit": 3, "trainer_memory_limit_gib": 6}


def _compiled(tmp_path, **changes):
    config_file = tmp_path / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, **changes}))
    config = kubeflow_config(config_file, ROOT)
    output = tmp_path / "pipeline.json"
    compile_pipeline(config, IMAGE, output)
    spec = json_format.ParseDict(json.loads(output.read_text()), pipeline_spec_pb2.PipelineSpec())
    return config, spec


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("kfp"))


def _task_of(node) -> str:
    # KFP v2 splits a blessed-model Resolver into a model and a blessing query; consumers
    # depend on the model query.
    return f"{node.id}-model-resolver" if isinstance(node, Resolver) else node.id


def test_every_component_is_a_task_with_its_upstream_edges(compiled):
    config, spec = compiled
    tasks = spec.root.dag.tasks
    for node in create_pipeline(config).components:
        assert _task_of(node) in tasks, node.id
        if isinstance(node, Resolver):
            continue
        expected = {_task_of(upstream) for upstream in node.upstream_nodes}
        assert set(tasks[node.id].dependent_tasks) == expected, node.id
    # The shape that matters, spelled out.
    assert "ExampleGen" in tasks["StatisticsGen"].dependent_tasks
    assert "ValidationGate" in tasks["Trainer"].dependent_tasks
    assert {"Evaluator", "InfraValidation"} <= set(tasks["Pusher"].dependent_tasks)


def _executors(spec) -> dict:
    return json_format.MessageToDict(spec.deployment_spec)["executors"]


def test_every_step_runs_in_the_requested_image_and_its_executor_imports(compiled):
    config, spec = compiled
    containers = [executor["container"] for executor in _executors(spec).values()
                  if "container" in executor]  # resolver queries run in the KFP backend
    components = create_pipeline(config).components
    assert len(containers) == sum(not isinstance(node, Resolver) for node in components)
    for container in containers:
        assert container["image"] == IMAGE
        args = container["args"]
        class_path = args[args.index("--executor_class_path") + 1]
        module_name, _, class_name = class_path.rpartition(".")
        assert hasattr(importlib.import_module(module_name), class_name), class_path


def test_per_run_values_are_runtime_parameters_with_the_configured_defaults(compiled):
    config, spec = compiled
    parameters = spec.root.input_definitions.parameters
    assert parameters[DATA_ROOT_PARAMETER].default_value.string_value == "gs://bucket/spans"
    assert json.loads(parameters[TRAIN_ARGS_PARAMETER].default_value.string_value) == {
        "num_steps": 321}
    tasks = spec.root.dag.tasks
    assert (tasks["ExampleGen"].inputs.parameters["input_base"].component_input_parameter
            == DATA_ROOT_PARAMETER)
    assert (tasks["Trainer"].inputs.parameters["train_args"].component_input_parameter
            == TRAIN_ARGS_PARAMETER)
    assert spec.default_pipeline_root == ROOT


def test_cluster_settings_reach_the_file(compiled):
    config, spec = compiled
    assert config.schema_path == IMAGE_SCHEMA_PATH
    assert not config.baseline_excludes_candidate
    trainer = _executors(spec)["Trainer_executor"]["container"]
    assert trainer["resources"] == {"cpuLimit": 3.0, "memoryLimit": 6.0}
    assert "--direct_running_mode=multi_processing" in trainer["args"]
    assert all(task.caching_options.enable_cache for task in spec.root.dag.tasks.values()
               if not task.task_info.name.endswith("resolver"))


def test_caching_follows_the_configuration(tmp_path):
    _, spec = _compiled(tmp_path, enable_cache=False)
    assert not any(task.caching_options.enable_cache for task in spec.root.dag.tasks.values())


def test_the_local_only_baseline_strategy_is_refused(tmp_path):
    config_file = tmp_path / "kubeflow.yaml"
    config_file.write_text(yaml.safe_dump({**SETTINGS, "baseline_excludes_candidate": True}))
    with pytest.raises(ConfigError, match="baseline_excludes_candidate"):
        kubeflow_config(config_file, ROOT)


def test_a_failed_compile_leaves_the_previous_file(tmp_path, compiled):
    config, _ = compiled
    output = tmp_path / "pipeline.json"
    output.write_text("previous")
    with pytest.raises(ConfigError, match="image"):
        compile_pipeline(config, "", output)
    assert output.read_text() == "previous"
