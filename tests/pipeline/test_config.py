from __future__ import annotations

import json

import pytest

from pipeline.config import ConfigError, PipelineConfig, load_config, local_config


def test_defaults_are_valid_once_locations_are_set(tmp_path):
    config = local_config(tmp_path / "ws", tmp_path / "data")
    assert config.validate() is config
    assert config.serving_model_dir == str((tmp_path / "ws" / "serving" / "big_tipper").resolve())
    assert config.pipeline_root.startswith(str((tmp_path / "ws").resolve()))


def test_yaml_and_json_files_override_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("train_steps: 42\nbeam_args: ['--a=1']\nmin_auc: 1\n")
    (tmp_path / "c.json").write_text(json.dumps({"window": 3, "hparams": {"batch_size": 8}}))
    from_yaml = load_config(tmp_path / "c.yaml")
    assert (from_yaml.train_steps, from_yaml.beam_args, from_yaml.min_auc) == (42, ("--a=1",), 1.0)
    from_json = load_config(tmp_path / "c.json")
    assert from_json.window == 3 and from_json.hparams == {"batch_size": 8}
    assert from_json.train_steps == PipelineConfig().train_steps


def test_flags_override_the_file_and_none_means_unset(tmp_path):
    (tmp_path / "c.yaml").write_text("train_steps: 42\nwindow: 2\n")
    config = load_config(tmp_path / "c.yaml").replace(train_steps=7, window=None)
    assert (config.train_steps, config.window) == (7, 2)


@pytest.mark.parametrize("text, message", [
    ("trian_steps: 5\n", "unknown setting.*trian_steps"),
    ("train_steps: many\n", "'train_steps' expects int"),
    ("enable_cache: 1\n", "'enable_cache' expects bool"),
    ("- a\n- b\n", "must hold a mapping"),
    ("train_steps: [\n", "is not valid"),
])
def test_bad_files_name_the_setting(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("changes, message", [
    ({"window": -1}, "'window' must be >= 0"),
    ({"train_steps": 0}, "'train_steps' must be positive"),
    ({"min_auc": 1.5}, "'min_auc' must be within"),
    ({"schema_path": "/no/such/schema.pbtxt"}, "schema file not found"),
    ({"model_name": "big tipper"}, "'model_name'"),
])
def test_validate_names_the_bad_value(tmp_path, changes, message):
    config = local_config(tmp_path / "ws", tmp_path / "data").replace(**changes)
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_locations_are_required():
    with pytest.raises(ConfigError, match="'pipeline_root' must be set"):
        PipelineConfig().validate()
