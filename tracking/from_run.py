"""A pipeline run's tracking record, built from what every orchestrator leaves: the run's
output artifacts (their custom properties and the files behind them: the window manifest,
drift findings, TFMA's results, the model card), the pipeline configuration, and where known
the steps' timings. Built in the processes that ran the pipeline (TFMA reads its own results
there); sent by `tracking.outbox`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import tensorflow_model_analysis as tfma

from ctpipe.common import layout, properties
from ctpipe.common.policies import STABLE
from ctpipe.common.window import MANIFEST_FILE, WindowManifest
from ctpipe.tracking.record import ModelToRegister, RunRecord, flatten, metric_name

# The served model's SavedModel inside a TFX Model artifact.
SERVING_MODEL_FOLDER = "Format-Serving"
# The Evaluator's metrics that the record carries, per model and slice.
EVALUATION_METRICS = ("auc", "binary_accuracy", "example_count")


def _custom(artifact, key: str) -> Any:
    value = artifact.custom_properties.get(key)
    return getattr(value, value.WhichOneof("value")) if value is not None and value.WhichOneof(
        "value") else None


def _local(uri: str) -> Path | None:
    """An artifact's folder when it is on this machine (locally, or KFP's mirror of it)."""
    return None if "://" in uri else Path(uri)


def window_params(examples) -> dict[str, str]:
    """The window's spans, digest, ingested and reused spans, and every span's fingerprint."""
    params = {f"window.{name}": str(_custom(examples, key)) for name, key in (
        ("spans", properties.WINDOW_SPANS), ("digest", properties.WINDOW_DIGEST),
        ("ingested_spans", properties.INGESTED_SPANS), ("reused_spans", properties.REUSED_SPANS))
        if _custom(examples, key) is not None}
    folder = _local(examples.uri)
    if folder is not None and (folder / MANIFEST_FILE).is_file():
        window = WindowManifest.from_json((folder / MANIFEST_FILE).read_text())
        params.update({f"span.{entry.span}.fingerprint": entry.fingerprint
                       for entry in window.spans})
    return params


def evaluation_metrics(evaluation) -> dict[str, float]:
    """Candidate's and baseline's AUC, accuracy and example count, overall and per slice:
    `auc/candidate`, `auc/baseline/payment_type:Cash`, ..."""

    folder = _local(evaluation.uri)
    if folder is None:
        return {}
    metrics = {}
    for piece in tfma.load_metrics(str(folder)):
        where = [f"{key.column}:{_slice_value(key)}" for key in piece.slice_key.single_slice_keys]
        for entry in piece.metric_keys_and_values:
            if (entry.key.name in EVALUATION_METRICS and not entry.key.is_diff
                    and entry.value.HasField("double_value")):
                model = entry.key.model_name or "candidate"  # TFMA's name without a baseline
                metrics[metric_name(entry.key.name, model, *where)] = (
                    entry.value.double_value.value)
    return metrics


def _slice_value(key) -> str:
    value = getattr(key, key.WhichOneof("kind"))
    return value.decode() if isinstance(value, bytes) else str(value)


def drift_metrics(drift_report) -> dict[str, float]:
    """Every drift comparison's score (`drift/fare/values_kolmogorov_smirnov`), as the
    ValidationGate recorded it (ctpipe.validation.calibrated_drift.Finding)."""
    folder = _local(drift_report.uri)
    path = folder / properties.DRIFT_FILE if folder is not None else None
    if path is None or not path.is_file():
        return {}
    return {metric_name("drift", finding["feature"],
                        f"{finding['measure']}_{finding['statistic']}".lower()):
            finding["score"] for finding in json.loads(path.read_text())}


def concept_metrics(concept) -> dict[str, float]:
    """How the served model did on the new span before training on it."""
    return {metric_name("concept_drift", key): float(_custom(concept, key))
            for key in ("auc", "auc_when_pushed", "drop")
            if isinstance(_custom(concept, key), float)}


def model_card(model) -> dict[str, Any]:
    """The card the Trainer wrote into its SavedModel: origin, training policy, steps."""
    folder = _local(model.uri)
    path = folder / SERVING_MODEL_FOLDER / layout.MODEL_CARD_FILE if folder else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def build_record(*, pipeline_name: str, pipeline_run_id: str, experiment: str, run_name: str,
                 failed: bool,
                 start_ms: int, end_ms: int, config: Mapping[str, Any],
                 outputs: Mapping[tuple[str, str], Any], model_name: str,
                 step_seconds: Mapping[str, float] = {}, step_states: Mapping[str, str] = {},
                 notes: Mapping[str, str] = {},
                 labels: Mapping[str, int] | None = None) -> RunRecord:
    """The record of one run, identified by pipeline and run (one MLflow run per record).
    `outputs` are its steps' output artifacts by (step, output key)
    (ML Metadata's, or KFP's); `step_seconds`, `step_states` and `notes` (the Trainer's start
    line) where the orchestrator reports them; `labels` those of TF Serving's model config file
    after the push (None: no such file)."""
    params = flatten(config, "config.")
    metrics: dict[str, float] = {metric_name("seconds", step): seconds
                                 for step, seconds in step_seconds.items()}
    record_id = f"{pipeline_name}/{pipeline_run_id}"
    tags = {"ctpipe.record_id": record_id, "ctpipe.pipeline_run_id": pipeline_run_id}
    tags.update({metric_name(f"ctpipe.step.{step}"): state
                 for step, state in step_states.items()})
    examples = outputs.get(("SpanWindow", "window_examples"))
    if examples is not None:
        params.update(window_params(examples))
    drift = outputs.get(("ValidationGate", "drift_report"))
    if drift is not None:
        metrics.update(drift_metrics(drift))
        drifted = _custom(drift, properties.DRIFTED_FEATURES)
        tags["drifted_features"] = drifted or "none"
    concept = outputs.get(("ConceptDrift", "evaluation"))
    if concept is not None:
        metrics.update(concept_metrics(concept))
        if _custom(concept, "concept_drift") is not None:
            tags["concept_drift"] = str(bool(_custom(concept, "concept_drift"))).lower()
    model = outputs.get(("Trainer", "model"))
    if model is not None:
        card = model_card(model)
        params.update({f"trainer.{key}": str(value) for key, value in card.items()
                       if key in ("origin", "training", "steps", "code_version")})
        if "code_version" in card:
            params["code_version"] = card["code_version"]
    if "Trainer" in notes:
        params["trainer.start"] = notes["Trainer"]
    model_run = outputs.get(("Trainer", "model_run"))
    if model_run is not None:
        tags["tensorboard.logdir"] = model_run.uri
        tags["mlflow.note.content"] = (f"TensorBoard logs of this run's training: "
                                       f"`tensorboard --logdir {model_run.uri}`")
    evaluation = outputs.get(("Evaluator", "evaluation"))
    if evaluation is not None:
        metrics.update(evaluation_metrics(evaluation))
    blessing = outputs.get(("Evaluator", "blessing"))
    tags["blessed"] = ("not evaluated" if blessing is None
                       else str(bool(_custom(blessing, properties.BLESSED))).lower())
    pushed = outputs.get(("Pusher", "pushed_model"))
    registered = None
    if pushed is not None and _custom(pushed, properties.PUSHED) == 1 and model is not None:
        version = int(_custom(pushed, properties.PUSHED_VERSION))
        tags["pushed_version"] = str(version)
        registered = ModelToRegister(model_name, version,
                                     str(_custom(pushed, properties.PUSHED_DESTINATION)),
                                     f"{model.uri.rstrip('/')}/{SERVING_MODEL_FOLDER}")
    else:
        tags["pushed_version"] = "none"
    return RunRecord(record_id=record_id, experiment=experiment, run_name=run_name,
                     status="FAILED" if failed else "FINISHED", start_ms=start_ms,
                     end_ms=end_ms, params=params, metrics=metrics, tags=tags,
                     model=registered, labels=None if registered is None else (
                         dict(labels) if labels is not None else {STABLE: registered.serving_version}))
