"""`ctpipe rollout analyze`: its help and the refusals that move no label, even with --apply.
Its verdicts on a real gateway's prediction log (promote and roll back, --apply, --json,
--tracking, exit 3 for a rollback, the feature join) and metrics:
tests/serving/gateway/test_gateway.py; the statistics: tests/rollout/."""
from __future__ import annotations

import dataclasses

import pytest

from ctpipe.rollout.thresholds import Thresholds
from ctpipe.serving.client import version_labels
from tests.ctpipe.conftest import assert_one_line_error


def test_help_gives_every_threshold_and_the_exit_status(ctpipe):
    shown = ctpipe("rollout", "analyze", "--help")
    assert (shown.status, shown.err) == (0, "")
    for field in dataclasses.fields(Thresholds):
        assert f"--{field.name.replace('_', '-')} " in shown.out, field.name
    assert "Exit status 0 for promote or wait, 3 for roll back." in shown.out
    assert_one_line_error(ctpipe("rollout"),
                          "the following arguments are required: rollout_command")
    assert_one_line_error(ctpipe("rollout", "analyze", "--model-config", "m.config",
                                 "--candidate", "blue"),
                          "argument --candidate: invalid choice: 'blue'")


@pytest.fixture
def model_config(tmp_path):
    """A model config whose model has a canary but no stable label."""
    base_path = tmp_path / "big_tipper"
    for version in (1, 2):
        (base_path / str(version)).mkdir(parents=True)
    config = tmp_path / "models.config"
    version_labels.write_initial_config(config, "big_tipper", str(base_path), {"canary": 2})
    return config


@pytest.mark.parametrize(("flags", "named"), [
    ([], "give --logs and/or --metrics"),
    (["--logs", "{logs}", "--model-config", "{missing}"], "model config file not found: "
                                                         "{missing}"),
    (["--logs", "{logs}"], "model 'big_tipper' has no 'stable' label"),
    (["--logs", "{logs}", "--false-rollback-rate", "1"],
     "--false-rollback-rate must be within (0, 1), got 1.0"),
    (["--logs", "{logs}", "--max-prediction-shift", "-0.1"],
     "--max-prediction-shift must be positive, got -0.1"),
], ids=["no-figures", "no-config", "no-stable", "rollback-rate", "prediction-shift"])
def test_bad_input_is_named_and_no_label_moves(ctpipe, model_config, tmp_path, flags, named):
    places = {"logs": tmp_path / "logs" / "big_tipper", "missing": tmp_path / "none.config"}
    before = model_config.read_bytes()
    assert_one_line_error(ctpipe("rollout", "analyze", "--model-config", model_config,
                                 *[f.format(**places) for f in flags], "--apply"),
                          named.format(**places))
    assert model_config.read_bytes() == before
