"""`label_pushed_version`: how the Pusher labels a new version for each `rollout`."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctpipe.serving.client import version_labels
from ctpipe.serving.client.errors import ModelConfigError

MODEL = "big_tipper"


@pytest.fixture()
def config_file(tmp_path) -> Path:
    base = tmp_path / "models" / MODEL
    for version in (1, 2, 3, 4):
        (base / str(version)).mkdir(parents=True)
    path = tmp_path / "models.config"
    version_labels.write_initial_config(path, MODEL, str(base))
    return path


def _state(path: Path) -> tuple[dict[str, int], list[int]]:
    entry = version_labels.model_entry(version_labels.read_config(path), MODEL)
    assert entry.model_version_policy.WhichOneof("policy_choice") == "specific"
    return dict(entry.version_labels), list(entry.model_version_policy.specific.versions)


@pytest.mark.parametrize("rollout", ["direct", "canary", "shadow"])
def test_the_first_push_becomes_stable_whatever_the_rollout(config_file, rollout):
    (change,) = version_labels.label_pushed_version(config_file, MODEL, 1, rollout)
    assert (change.label, change.previous_version, change.version) == ("stable", None, 1)
    assert _state(config_file) == ({"stable": 1}, [1])


@pytest.mark.parametrize("rollout", ["canary", "shadow"])
def test_canary_and_shadow_leave_stable_and_keep_both_loaded(config_file, rollout):
    version_labels.label_pushed_version(config_file, MODEL, 1, "direct")
    (change,) = version_labels.label_pushed_version(config_file, MODEL, 2, rollout)
    assert (change.label, change.version) == (rollout, 2)
    assert _state(config_file) == ({"stable": 1, rollout: 2}, [1, 2])
    # A later candidate replaces the earlier one, which is no longer loaded.
    version_labels.label_pushed_version(config_file, MODEL, 3, rollout)
    assert _state(config_file) == ({"stable": 1, rollout: 3}, [1, 3])


def test_direct_takes_all_default_traffic_and_keeps_the_old_stable_for_rollback(config_file):
    version_labels.label_pushed_version(config_file, MODEL, 1, "direct")
    version_labels.label_pushed_version(config_file, MODEL, 2, "canary")
    version_labels.label_pushed_version(config_file, MODEL, 3, "shadow")
    changes = version_labels.label_pushed_version(config_file, MODEL, 4, "direct")
    assert [c.describe() for c in changes] == [f"{MODEL}: label 'stable' 1 -> 4",
                                               f"{MODEL}: label 'canary' 2 -> removed"]
    assert _state(config_file) == ({"stable": 4, "shadow": 3}, [1, 3, 4])
    # The stable it replaced is still loaded, so a rollback can point at it at once.
    change = version_labels.rollback(config_file, MODEL)
    assert (change.previous_version, change.version) == (4, 3)


def test_a_latest_policy_becomes_specific(config_file):
    assert "latest {" in config_file.read_text()
    version_labels.label_pushed_version(config_file, MODEL, 2, "direct")
    version_labels.label_pushed_version(config_file, MODEL, 3, "canary")
    assert _state(config_file) == ({"stable": 2, "canary": 3}, [2, 3])
    assert "latest {" not in config_file.read_text()


@pytest.mark.parametrize("version, rollout, message", [
    (9, "direct", "version 9 of 'big_tipper' not found"),
    (2, "blue_green", "rollout must be one of direct, canary, shadow"),
])
def test_errors_write_nothing(config_file, version, rollout, message):
    before = config_file.read_text()
    with pytest.raises(ModelConfigError, match=message):
        version_labels.label_pushed_version(config_file, MODEL, version, rollout)
    assert config_file.read_text() == before
    assert [p.name for p in config_file.parent.iterdir() if p.name.startswith(".")] == []
