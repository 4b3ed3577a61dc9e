"""The `tracking:` setting: off by default, `true`, a URI or a mapping; no credentials."""
from __future__ import annotations

import pytest

from ctpipe.pipeline.config import ConfigError, local_config


def test_tracking_is_off_unless_asked_and_true_is_the_workspace_store(tmp_path):
    ws = tmp_path / "ws"
    assert local_config(ws, tmp_path, {}).tracking is None
    assert local_config(ws, tmp_path, {"tracking": False}).tracking is None
    embedded = local_config(ws, tmp_path, {"tracking": True})
    assert embedded.tracking_uri(ws) == f"sqlite:///{ws.resolve() / 'mlflow.sqlite'}"
    assert embedded.tracking_artifacts(ws) == (ws.resolve() / "mlartifacts").as_uri()
    server = local_config(ws, tmp_path, {"tracking": "http://127.0.0.1:5000"})
    assert server.tracking_uri(ws) == "http://127.0.0.1:5000"
    assert server.tracking_artifacts(ws) == "", "a server decides where artifacts go"
    named = local_config(ws, tmp_path, {"tracking": {"uri": "sqlite:////srv/mlflow.db",
                                                     "experiment": "taxi"}})
    assert named.tracking.experiment == "taxi"
    assert named.tracking_artifacts(ws) == (ws.resolve() / "mlartifacts").as_uri()


@pytest.mark.parametrize("value, message", [
    ("http://me:secret@mlflow:5000", "'tracking.uri' must not hold credentials"),
    ({"uri": "http://mlflow:5000", "timeout_seconds": 0}, "'tracking.timeout_seconds' must be"),
    ({"url": "http://mlflow:5000"}, "unknown setting(s): tracking.url"),
    (3, "'tracking' expects a mapping"),
])
def test_bad_tracking_settings_are_named(tmp_path, value, message):
    with pytest.raises(ConfigError) as refused:
        local_config(tmp_path / "ws", tmp_path, {"tracking": value})
    assert message in str(refused.value)
