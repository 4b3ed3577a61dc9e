"""Records written into a real MLflow store (SQLite): one run per record however often it is
sent, the pushed SavedModel as a model version, aliases that follow TF Serving's labels."""
from __future__ import annotations

from mlflow import MlflowClient

from ctpipe.tracking import store
from tests.tracking.conftest import pushed_run


def _aliases(mlflow: MlflowClient) -> dict[str, str]:
    return dict(mlflow.get_registered_model("big_tipper").aliases)


def test_a_run_is_logged_once_and_its_pushed_model_registered(store_uri, constant_model_dir,
                                                               tmp_path):
    mlflow = store.client(store_uri)
    record = pushed_run("taxi/2026-01-01T00:00:00", 1700000000, constant_model_dir,
                        tmp_path / "serving")
    done = store.write_run(mlflow, record, (tmp_path / "artifacts").as_uri())
    again = store.write_run(mlflow, record, (tmp_path / "artifacts").as_uri())

    (run,) = mlflow.search_runs([mlflow.get_experiment_by_name("taxi-big-tipper").experiment_id])
    assert done[0] == f"logged MLflow run {run.info.run_id} in experiment 'taxi-big-tipper'"
    assert again[0] == f"MLflow run {run.info.run_id} of this record was logged before"
    assert run.info.status == "FINISHED" and run.info.run_name == record.run_name
    assert run.data.params == record.params and run.data.metrics == record.metrics
    assert run.data.tags["pushed_version"] == "1700000000"
    logged = {f.path for f in mlflow.list_artifacts(run.info.run_id, "saved_model")}
    assert "saved_model/saved_model.pb" in logged

    (version,) = mlflow.search_model_versions("name = 'big_tipper'")
    assert version.run_id == run.info.run_id and version.tags["serving_version"] == "1700000000"
    assert version.source.endswith("/saved_model")
    assert _aliases(mlflow) == {"champion": version.version}


def test_a_run_cut_short_is_logged_anew(store_uri, tmp_path, constant_model_dir):
    mlflow = store.client(store_uri)
    record = pushed_run("taxi/2026-01-02T00:00:00", 1700000100, constant_model_dir,
                        tmp_path / "serving")
    experiment = mlflow.create_experiment(record.experiment,
                                          artifact_location=(tmp_path / "artifacts").as_uri())
    cut = mlflow.create_run(experiment, tags={store.RECORD_ID_TAG: record.record_id})
    mlflow.log_param(cut.info.run_id, "config.window", "0")  # then the connection dropped

    store.write_run(mlflow, record)
    (run,) = mlflow.search_runs([experiment])
    assert run.info.run_id != cut.info.run_id and run.data.tags[store.COMPLETE_TAG] == "true"


def test_aliases_follow_the_labels(store_uri, tmp_path, constant_model_dir):
    mlflow = store.client(store_uri)
    for number, version in enumerate((1700000001, 1700000002, 1700000003)):
        store.write_run(mlflow, pushed_run(f"taxi/run-{number}", version, constant_model_dir,
                                           tmp_path / "serving", labels={}),
                        (tmp_path / "artifacts").as_uri())
    registry = {int(v.tags["serving_version"]): v.version
                for v in mlflow.search_model_versions("name = 'big_tipper'")}

    changes = store.follow_labels(mlflow, "big_tipper",
                                  {"stable": 1700000002, "canary": 1700000003})
    assert _aliases(mlflow) == {"champion": registry[1700000002],
                                "challenger": registry[1700000003]}
    assert changes == [
        f"alias 'champion' -> version {registry[1700000002]} (serving version 1700000002, "
        "label 'stable')",
        f"alias 'challenger' -> version {registry[1700000003]} (serving version 1700000003, "
        "label 'canary')"]
    assert store.follow_labels(mlflow, "big_tipper",
                               {"stable": 1700000002, "canary": 1700000003}) == [], "no change"

    # Promotion: stable takes the canary's version, the canary label goes.
    store.follow_labels(mlflow, "big_tipper", {"stable": 1700000003})
    assert _aliases(mlflow) == {"champion": registry[1700000003]}
    # A shadow is a challenger too; a version pushed while tracking was off is named.
    changes = store.follow_labels(mlflow, "big_tipper", {"stable": 1600000000,
                                                         "shadow": 1700000001})
    assert _aliases(mlflow) == {"champion": registry[1700000003],
                                "challenger": registry[1700000001]}
    assert changes[0] == ("alias 'champion' not moved: serving version 1600000000 ('stable') "
                          "is not registered (pushed while tracking was off?)")
