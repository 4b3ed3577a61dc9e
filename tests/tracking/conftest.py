"""Real MLflow stores (SQLite in a temporary folder) and real SavedModels to register."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctpipe.tracking import store
from ctpipe.tracking.record import ModelToRegister, RunRecord
from tests.serving.conftest import constant_model_dir, push_version  # noqa: F401


@pytest.fixture
def store_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.sqlite'}"


def pushed_run(record_id: str, serving_version: int, saved_model: Path, serving_root: Path,
               labels: dict[str, int] | None = None) -> RunRecord:
    """The record of a run that pushed `saved_model` as `serving_version` (its folder made as
    the Pusher makes it)."""
    destination = push_version(saved_model, serving_root, serving_version)
    return RunRecord(
        record_id=record_id, experiment="taxi-big-tipper", run_name=record_id,
        status="FINISHED", start_ms=1_700_000_000_000, end_ms=1_700_000_060_000,
        params={"config.window": "0", "window.spans": "1-4"},
        metrics={"auc/candidate": 0.91, "auc/baseline": 0.9, "seconds/Trainer": 6.5},
        tags={"blessed": "true", "pushed_version": str(serving_version)},
        model=ModelToRegister("big_tipper", serving_version, str(destination), str(saved_model)),
        labels={"stable": serving_version} if labels is None else labels)


def register_versions(uri: str, base_path: Path, versions: list[int],
                      artifacts: Path) -> dict[int, str]:
    """Registers existing version folders (as runs that pushed them would); serving version ->
    the registry's version."""
    mlflow = store.client(uri)
    for version in versions:
        folder = base_path / str(version)
        store.write_run(mlflow, RunRecord(
            record_id=f"pushed/{version}", experiment="taxi-big-tipper", run_name=str(version),
            status="FINISHED", start_ms=1, end_ms=2, params={}, metrics={}, tags={},
            model=ModelToRegister(base_path.name, version, str(folder), str(folder)),
            labels=None), artifacts.as_uri())
    return {int(v.tags["serving_version"]): v.version
            for v in mlflow.search_model_versions(f"name = '{base_path.name}'")}
