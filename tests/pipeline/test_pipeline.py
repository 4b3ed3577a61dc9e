from __future__ import annotations

import json

import pytest

import models
from components.window_example_gen import window_patterns
from pipeline.config import PipelineConfig, local_config
from pipeline.pipeline import create_pipeline


@pytest.fixture()
def config(tmp_path) -> PipelineConfig:
    return local_config(tmp_path / "ws", tmp_path / "data")


def _nodes(pipeline):
    return {node.id: node for node in pipeline.components}


def test_pipeline_has_every_step_in_order(config):
    ids = [node.id for node in create_pipeline(config).components]
    for earlier, later in [("ExampleGen", "StatisticsGen"), ("StatisticsGen", "ExampleValidator"),
                           ("ExampleValidator", "ValidationGate"), ("ValidationGate", "Trainer"),
                           ("Trainer", "Evaluator"), ("Evaluator", "Pusher")]:
        assert earlier in ids and later in ids
    nodes = _nodes(create_pipeline(config))
    assert "ValidationGate" in {n.id for n in nodes["Trainer"].upstream_nodes}
    assert "ImportSchemaGen" in nodes


def test_bootstrap_mode_infers_the_schema(config):
    nodes = _nodes(create_pipeline(config.replace(schema_path="")))
    assert "SchemaGen" in nodes and "ImportSchemaGen" not in nodes


def test_trainer_cache_key_holds_code_version_and_settings(config):
    trainer = _nodes(create_pipeline(config.replace(seed=7)))["Trainer"]
    custom = json.loads(trainer.exec_properties["custom_config"])
    assert custom["code_version"] == models.code_version()
    assert custom["seed"] == 7


def test_pusher_writes_under_serving_model_name(config):
    pusher = _nodes(create_pipeline(config))["Pusher"]
    assert config.serving_model_dir in pusher.exec_properties["push_destination"]


def test_factory_keeps_no_physical_defaults():
    with pytest.raises(ValueError, match="pipeline_root"):
        create_pipeline(PipelineConfig())


@pytest.mark.parametrize("newest, window, existing, expected", [
    (5, 0, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
    (5, 2, [1, 2, 3, 4, 5], [4, 5]),
    (3, 10, [2, 3], None),
    (4, 0, [2, 3, 4], [2, 3, 4]),
])
def test_window_patterns(newest, window, existing, expected):
    if expected is None:
        with pytest.raises(RuntimeError, match=r"spans missing inside the window 1..3: \[1\]"):
            window_patterns("span-{SPAN}/*.csv", newest, window, existing)
    else:
        assert window_patterns("span-{SPAN}/*.csv", newest, window, existing) == [
            f"span-{n}/*.csv" for n in expected]
