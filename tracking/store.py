"""Records into MLflow: the run, the pushed SavedModel as a registered model version, and the
registry aliases that follow TF Serving's labels (`stable` -> `champion`, `canary` or `shadow`
-> `challenger`).

Every write is idempotent, so a record can be sent again after a failure part-way: a run is
found again by its record id (an incomplete one is deleted and logged anew), a model version
by the TF Serving version it holds (tag `serving_version`), and aliases are set to what the
labels say.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path
from typing import Mapping

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion

from ctpipe.common.policies import CANARY, SHADOW, STABLE
from ctpipe.tracking.record import ModelToRegister, RunRecord

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
# Registry alias -> the TF Serving labels it follows, the first one present wins.
LABELS_OF_ALIAS = {CHAMPION: (STABLE,), CHALLENGER: (CANARY, SHADOW)}
SERVING_VERSION_TAG = "serving_version"
RECORD_ID_TAG = "ctpipe.record_id"
# Set last: a run without it was cut short and is logged anew.
COMPLETE_TAG = "ctpipe.complete"
MODEL_ARTIFACT_PATH = "saved_model"
# MLflow's limits per log_batch call.
_PARAMS_OR_TAGS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000
_MAX_PARAM_LENGTH = 6000


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(mlflow: MlflowClient, name: str, artifact_location: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location or None)


def _logged_run(mlflow: MlflowClient, experiment_id: str, record_id: str) -> str | None:
    """The complete run of this record, if it was logged before; incomplete ones are deleted."""
    found = None
    for run in mlflow.search_runs([experiment_id],
                                  filter_string=f"tags.`{RECORD_ID_TAG}` = '{record_id}'"):
        if run.data.tags.get(COMPLETE_TAG) == "true":
            found = run.info.run_id
        else:
            log.info("deleting MLflow run %s: an earlier attempt to log record %s was cut short",
                     run.info.run_id, record_id)
            mlflow.delete_run(run.info.run_id)
    return found


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def write_run(mlflow: MlflowClient, record: RunRecord, artifact_location: str = "") -> list[str]:
    """Logs the record (once), registers its pushed model and moves the aliases; returns what
    was done, one line each."""
    experiment_id = _experiment_id(mlflow, record.experiment, artifact_location)
    run_id = _logged_run(mlflow, experiment_id, record.record_id)
    done = []
    if run_id is None:
        run = mlflow.create_run(experiment_id, start_time=record.start_ms,
                                tags={RECORD_ID_TAG: record.record_id},
                                run_name=record.run_name)
        run_id = run.info.run_id
        params = [Param(k, v[:_MAX_PARAM_LENGTH]) for k, v in sorted(record.params.items())]
        tags = [RunTag(k, v) for k, v in sorted(record.tags.items())]
        metrics = [Metric(k, v, record.end_ms, 0) for k, v in sorted(record.metrics.items())]
        for chunk in _chunks(params, _PARAMS_OR_TAGS_PER_BATCH):
            mlflow.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags, _PARAMS_OR_TAGS_PER_BATCH):
            mlflow.log_batch(run_id, tags=chunk)
        for chunk in _chunks(metrics, _METRICS_PER_BATCH):
            mlflow.log_batch(run_id, metrics=chunk)
        if record.model is not None and Path(record.model.saved_model_dir).is_dir():
            mlflow.log_artifacts(run_id, record.model.saved_model_dir, MODEL_ARTIFACT_PATH)
        mlflow.set_tag(run_id, COMPLETE_TAG, "true")
        # MLflow prints a tracking server's links to the run on stdout: they go into the
        # line of this run instead of between the command's lines.
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            mlflow.set_terminated(run_id, status=record.status, end_time=record.end_ms)
        links = re.findall(r"View run .* at: (\S+)", printed.getvalue())
        done.append(f"logged MLflow run {run_id} in experiment '{record.experiment}'"
                    + (f" ({links[0]})" if links else ""))
    else:
        done.append(f"MLflow run {run_id} of this record was logged before")
    if record.model is not None:
        version, created = register(mlflow, run_id, record.model)
        done.append(f"{'registered' if created else 'already registered:'} model "
                    f"'{record.model.name}' version {version.version} (serving version "
                    f"{record.model.serving_version})")
    if record.labels is not None and record.model is not None:
        done += follow_labels(mlflow, record.model.name, record.labels)
    return done


def registered_version(mlflow: MlflowClient, name: str,
                       serving_version: int) -> ModelVersion | None:
    """The registry's version of a TF Serving version, or None if it was never registered."""
    found = mlflow.search_model_versions(
        f"name = '{name}' and tags.{SERVING_VERSION_TAG} = '{serving_version}'")
    return max(found, key=lambda v: int(v.version), default=None)


def register(mlflow: MlflowClient, run_id: str,
             model: ModelToRegister) -> tuple[ModelVersion, bool]:
    """The pushed SavedModel as a version of the registered model (once per serving version;
    True when created now). Its source is the copy logged with the run; without it (the
    Trainer's artifact is gone when an old record is sent), the version folder TF Serving
    reads."""
    existing = registered_version(mlflow, model.name, model.serving_version)
    if existing is not None:
        return existing, False
    if not mlflow.search_registered_models(filter_string=f"name = '{model.name}'"):
        mlflow.create_registered_model(model.name)
    logged = mlflow.list_artifacts(run_id, MODEL_ARTIFACT_PATH)
    source = (f"{mlflow.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_PATH}" if logged
              else model.destination)
    return mlflow.create_model_version(
        model.name, source=source, run_id=run_id,
        tags={SERVING_VERSION_TAG: str(model.serving_version), "serving_path": model.destination},
        description=f"TF Serving version {model.serving_version} at {model.destination}"), True


def follow_labels(mlflow: MlflowClient, name: str, labels: Mapping[str, int]) -> list[str]:
    """Points the aliases at the registered versions of the labelled serving versions (and
    removes an alias whose labels are gone); returns the changes, one line each."""
    found = mlflow.search_registered_models(filter_string=f"name = '{name}'")
    if not found:
        return [f"model '{name}' is not registered in MLflow yet: no alias to move"]
    aliases = dict(found[0].aliases)
    changes = []
    for alias, followed in LABELS_OF_ALIAS.items():
        label = next((label for label in followed if label in labels), None)
        current = aliases.get(alias)
        if label is None:
            if current is not None:
                mlflow.delete_registered_model_alias(name, alias)
                changes.append(f"alias '{alias}' removed (was version {current})")
            continue
        version = registered_version(mlflow, name, labels[label])
        if version is None:
            changes.append(f"alias '{alias}' not moved: serving version {labels[label]} "
                           f"('{label}') is not registered (pushed while tracking was off?)")
        elif current != version.version:
            mlflow.set_registered_model_alias(name, alias, version.version)
            changes.append(f"alias '{alias}' -> version {version.version} (serving version "
                           f"{labels[label]}, label '{label}')")
    return changes
