from __future__ import annotations

import json

import pytest

from ctpipe import models
from ctpipe.models.options import from_custom_config
from ctpipe.pipeline.config import PipelineConfig, local_config
from ctpipe.pipeline.pipeline import OUTSIDE_STATE_STEPS, create_pipeline


@pytest.fixture()
def config(tmp_path) -> PipelineConfig:
    return local_config(tmp_path / "ws", tmp_path / "data")


def _nodes(pipeline):
    return {node.id: node for node in pipeline.components}


def _upstream(node) -> set[str]:
    return {upstream.id for upstream in node.upstream_nodes}


def test_every_step_consumes_what_the_step_before_it_produces(config):
    nodes = _nodes(create_pipeline(config))
    assert set(nodes) == {"ExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                          "SpanWindow", "ValidationGate", "ServedModel", "ConceptDrift",
                          "Trainer", "Evaluator", "InfraValidation", "Pusher"}
    # TFX's ingestion, profiling and schema steps, by their names and artifact types.
    assert _upstream(nodes["StatisticsGen"]) == {"ExampleGen", "ImportSchemaGen"}
    assert nodes["ExampleGen"].outputs["examples"].type_name == "Examples"
    assert nodes["StatisticsGen"].outputs["statistics"].type_name == "ExampleStatistics"
    assert nodes["ImportSchemaGen"].outputs["schema"].type_name == "Schema"
    assert _upstream(nodes["SpanWindow"]) == {"ExampleGen"}
    assert _upstream(nodes["ConceptDrift"]) == {"SpanWindow", "ServedModel", "ValidationGate"}
    assert _upstream(nodes["ExampleValidator"]) == {"StatisticsGen", "ImportSchemaGen"}
    # Drift is read from the window's spans themselves (validation/calibrated_drift.py).
    assert _upstream(nodes["ValidationGate"]) == {"ExampleValidator", "SpanWindow",
                                                  "ImportSchemaGen"}
    # The gate's output feeds the Trainer: no training on data that failed validation.
    assert {"SpanWindow", "ValidationGate", "ServedModel"} <= _upstream(nodes["Trainer"])
    assert {"Trainer", "ServedModel", "SpanWindow"} <= _upstream(nodes["Evaluator"])
    assert {"Evaluator", "InfraValidation", "Trainer"} <= _upstream(nodes["Pusher"])
    # Topological order as listed, so LocalDagRunner runs them in this order.
    ids = [node.id for node in create_pipeline(config).components]
    for node_id, node in nodes.items():
        assert all(ids.index(up) < ids.index(node_id) for up in _upstream(node)), node_id


def test_evaluator_sees_the_bounded_eval_set_and_the_served_baseline(config):
    evaluator = _nodes(create_pipeline(config))["Evaluator"]
    assert evaluator.inputs["examples"].output_key == "eval_examples"
    assert evaluator.inputs["baseline_model"].producer_component_id == "ServedModel"


def test_bootstrap_mode_infers_the_schema(config):
    nodes = _nodes(create_pipeline(config.replace(schema_path="")))
    assert "SchemaGen" in nodes and "ImportSchemaGen" not in nodes
    assert _upstream(nodes["SchemaGen"]) == {"StatisticsGen"}


def test_the_curated_schema_text_is_the_parameter(config, tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "fare" type: FLOAT }\n')
    node = _nodes(create_pipeline(config.replace(schema_path=str(schema))))["ImportSchemaGen"]
    assert node.exec_properties["schema_text"] == schema.read_text()
    assert node.exec_properties["schema_file"] == str(schema)


def test_the_span_is_explicit_and_bounds_the_drivers_search(config):
    example_gen = _nodes(create_pipeline(config.replace(span=7)))["ExampleGen"]
    assert example_gen.exec_properties["requested_span"] == 7
    assert json.loads(example_gen.exec_properties["range_config"])["static_range"] == {
        "start_span_number": 7, "end_span_number": 7}
    newest = _nodes(create_pipeline(config))["ExampleGen"]
    assert newest.exec_properties["requested_span"] == 0
    assert newest.exec_properties["range_config"] is None


def test_trainer_cache_key_holds_code_version_and_settings(config):
    trainer = _nodes(create_pipeline(config.replace(trainer={"seed": 7})))["Trainer"]
    custom = json.loads(trainer.exec_properties["custom_config"])
    assert custom["code_version"] == models.code_version()
    options = from_custom_config(custom)
    assert options.seed == 7
    assert options.checkpoints.root == f"{config.pipeline_root}/checkpoints"


def test_push_and_lookup_use_the_serving_model_dir(config):
    nodes = _nodes(create_pipeline(config))
    assert nodes["Pusher"].exec_properties["serving_model_dir"] == config.serving_model_dir
    assert nodes["ServedModel"].exec_properties["serving_model_dir"] == config.serving_model_dir


def test_outside_state_steps_have_a_snapshot_driver(config):
    nodes = _nodes(create_pipeline(config))
    for step in OUTSIDE_STATE_STEPS:
        assert nodes[step].driver_class.__name__ in ("Driver", "FileBasedDriver"), step
