from __future__ import annotations

import json

import pytest

from ctpipe.models.options import TrainerOptions, from_custom_config, to_custom_config
from ctpipe.pipeline.config import (
    ConfigError,
    PipelineConfig,
    build_config,
    load_config,
    local_config,
    local_locations,
)


def test_defaults_are_valid_once_locations_are_set(tmp_path):
    config = local_config(tmp_path / "ws", tmp_path / "data")
    assert isinstance(config, PipelineConfig)
    assert config.serving_model_dir == str((tmp_path / "ws" / "serving" / "big_tipper").resolve())
    assert config.pipeline_root.startswith(str((tmp_path / "ws").resolve()))
    assert config.span_index_uri == f"{config.pipeline_root}/span-index"
    assert config.trainer_options().checkpoints.root == f"{config.pipeline_root}/checkpoints"


def test_yaml_and_json_files_override_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("train_steps: 42\nbeam_args: ['--a=1']\nmin_auc: 1\n")
    (tmp_path / "c.json").write_text(json.dumps({"window": 3,
                                                 "trainer": {"hparams": {"batch_size": 8}}}))
    locations = local_locations(tmp_path / "ws", tmp_path / "data")
    from_yaml = load_config(tmp_path / "c.yaml", locations)
    assert (from_yaml.train_steps, from_yaml.beam_args, from_yaml.min_auc) == (42, ("--a=1",), 1.0)
    from_json = load_config(tmp_path / "c.json", locations)
    assert from_json.window == 3 and from_json.trainer.hparams.batch_size == 8
    assert from_json.train_steps == PipelineConfig.model_fields["train_steps"].default


def test_flags_override_the_file_and_none_means_unset(tmp_path):
    (tmp_path / "c.yaml").write_text("train_steps: 42\nwindow: 2\n")
    config = load_config(tmp_path / "c.yaml", {**local_locations(tmp_path, tmp_path),
                                               "train_steps": 7, "window": None})
    assert (config.train_steps, config.window) == (7, 2)


@pytest.mark.parametrize("text, message", [
    ("trian_steps: 5\n", "unknown setting.*trian_steps"),
    ("train_steps: many\n", "'train_steps' expects int"),
    ("enable_cache: 1\n", "'enable_cache' expects bool"),
    ("- a\n- b\n", "must hold a mapping"),
    ("train_steps: [\n", "is not valid"),
    ("trainer: {warm_start: sometimes}\n", "'trainer.warm_start' must be 'auto', 'off' or"),
    ("trainer: {hparams: {hiden_units: [8]}}\n", "unknown setting.*trainer.hparams.hiden_units"),
    ("warm_start: auto\n", "unknown setting.*warm_start.*under 'trainer:'"),
])
def test_bad_files_name_the_setting(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml", local_locations(tmp_path, tmp_path))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("changes, message", [
    ({"window": -1}, "'window' must be >= 0"),
    ({"train_steps": 0}, "'train_steps' must be positive"),
    ({"min_auc": 1.5}, "'min_auc' must be within"),
    ({"schema_path": "/no/such/schema.pbtxt"}, "schema file not found"),
    ({"model_name": "big tipper"}, "'model_name'"),
    ({"trainer": {"training": "incremental", "warm_start": "off"}}, "needs warm_start"),
    ({"trainer": {"checkpoints": {"export": "best", "root": ""}}}, None),
])
def test_bad_values_are_refused_when_constructed(tmp_path, changes, message):
    if message is None:  # the default checkpoint root is filled in: best export works
        config = local_config(tmp_path / "ws", tmp_path / "data", changes)
        assert config.trainer_options().checkpoints.root
        return
    with pytest.raises(ConfigError, match=message):
        local_config(tmp_path / "ws", tmp_path / "data", changes)
    with pytest.raises(ConfigError, match=message):
        local_config(tmp_path / "ws", tmp_path / "data").replace(**changes)


def test_locations_are_required_and_the_hint_is_given():
    with pytest.raises(ConfigError, match="'pipeline_root' is required"):
        build_config({"data_root": "/d", "serving_root": "/s"})
    with pytest.raises(ConfigError, match="'data_root' is required: pass --data"):
        build_config({"pipeline_root": "/p", "serving_root": "/s"},
                     hints={"data_root": "pass --data"})


def test_trainer_options_cross_into_the_trainer_whole(tmp_path):
    config = local_config(tmp_path / "ws", tmp_path / "data", {"trainer": {
        "hparams": {"hidden_units": [16, 8]}, "training": "incremental",
        "transfer": {"pretrained_model": "/m", "strategy": "fine_tuning"}}})
    custom = json.loads(json.dumps(to_custom_config(config.trainer_options(), "v1")))
    decoded = from_custom_config(custom)
    assert decoded == config.trainer_options()
    assert decoded.hparams.hidden_units == (16, 8) and decoded.transfer.strategy == "fine_tuning"
    with pytest.raises(ValueError, match="trainer_options"):
        from_custom_config({"code_version": "v1"})
    assert TrainerOptions().warm_start == PipelineConfig.model_fields["trainer"].default.warm_start
