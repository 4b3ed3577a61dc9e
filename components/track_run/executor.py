"""TrackRun: the MLflow record of a pipeline run on Kubeflow, as the run's last step.

Locally, `ctpipe run` logs every run from ML Metadata once LocalDagRunner ends
(`pipeline/local_runner.py`), failed and cached runs too. On a cluster no process outlives the
steps, so the Kubeflow compile (`pipeline/kubeflow/runner.py`) appends this step after the
Pusher: it builds the same record (`ctpipe.tracking.record`) from its input artifacts, which are the
run's outputs, and sends it through an outbox under the pipeline root, so an unreachable
tracking server is reported and the record waits for the next run or `ctpipe track sync
--outbox`. It is never cached (a cached step would log nothing), and a run stopped before the
Pusher is not logged on a cluster. The tracking URI is a parameter, never a credential: MLflow
reads MLFLOW_TRACKING_TOKEN (or _USERNAME/_PASSWORD) from the pod's environment.
"""
from __future__ import annotations

import json
import posixpath
import time
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from ctpipe.common import progress
from ctpipe.serving.client.version_labels import labels_of
from ctpipe.tracking import outbox
from ctpipe.tracking.from_run import build_record

# Input key -> (step, output key) of the pipeline whose artifact it is.
INPUTS = {
    "window_examples": ("SpanWindow", "window_examples"),
    "drift_report": ("ValidationGate", "drift_report"),
    "concept_drift": ("ConceptDrift", "evaluation"),
    "model": ("Trainer", "model"),
    "model_run": ("Trainer", "model_run"),
    "evaluation": ("Evaluator", "evaluation"),
    "blessing": ("Evaluator", "blessing"),
    "pushed_model": ("Pusher", "pushed_model"),
}
INPUT_TYPES = {
    "window_examples": standard_artifacts.Examples,
    "drift_report": standard_artifacts.ExampleAnomalies,
    "concept_drift": standard_artifacts.ModelEvaluation,
    "model": standard_artifacts.Model,
    "model_run": standard_artifacts.ModelRun,
    "evaluation": standard_artifacts.ModelEvaluation,
    "blessing": standard_artifacts.ModelBlessing,
    "pushed_model": standard_artifacts.PushedModel,
}
RECORD_KEY = "record"
RECORD_FILE = "record.json"


class TrackingRecord(types.Artifact):
    """The record TrackRun sent (or kept): a run's parameters, metrics and tags as JSON."""

    TYPE_NAME = "ctpipe.TrackingRecord"  # <namespace>.<Name>: how KFP v2 types custom artifacts


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        record_uri = output_dict[RECORD_KEY][0].uri
        now = time.time()
        record = build_record(
            # The record's own artifact is unique to this run on every orchestrator.
            pipeline_name=exec_properties["pipeline_name"], pipeline_run_id=record_uri,
            experiment=exec_properties["experiment"],
            run_name=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)),
            failed=False, start_ms=int(now * 1000), end_ms=int(now * 1000),
            config=json.loads(exec_properties["configuration"]),
            outputs={INPUTS[key]: artifacts[0].mlmd_artifact
                     for key, artifacts in input_dict.items() if artifacts},
            model_name=exec_properties["model_name"],
            labels=(labels_of(exec_properties["serving_model_config"],
                              exec_properties["model_name"])
                    if exec_properties["serving_model_config"] else None))
        entry: dict[str, Any] = {"kind": outbox.RUN,
                                 "tracking_uri": exec_properties["tracking_uri"],
                                 "record": record.to_json()}
        io_utils.write_string_file(posixpath.join(record_uri, RECORD_FILE),
                                   json.dumps(entry, indent=1))
        for line in outbox.send(exec_properties["outbox"], entry,
                                float(exec_properties["timeout_seconds"])):
            progress.note(f"Tracking: {line}")
