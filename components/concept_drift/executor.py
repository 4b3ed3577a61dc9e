"""ConceptDrift: how well the served model still predicts the newly arrived, labelled span.

Before the new span is trained on, the served model scores it (every labelled trip of the span)
and that AUC is recorded beside the AUC the model had when it was pushed (its push record). A
drop beyond `max_auc_drop` is concept drift: the relation between features and label changed,
not only the features. Data drift (ValidationGate) may be absent while the concept drifts, and
the reverse. It runs on data that passed validation (it consumes the validation gate's drift
report, whose drifted features it records beside its own finding). The result is a
ModelEvaluation (`concept_drift.json`, custom properties) that `ctpipe status` lists per span.
"""
from __future__ import annotations

import json
import os
import posixpath

import numpy as np
import tensorflow as tf
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from ctpipe.common import features, progress, properties
from ctpipe.common.window import MANIFEST_FILE, WindowManifest
from ctpipe.components.served_model.executor import push_record

RESULT_FILE = "concept_drift.json"
# Enough for an AUC within about ±0.005 (Hanley-McNeil at this data's base rate), whatever
# the span's size: a real quarter's millions of trips would cost minutes of scoring.
MAX_SCORED_EXAMPLES = 50_000


def score_auc(model_dir: str, files: list[str]) -> tuple[float, int]:
    """AUC of a pushed model's serving signature on (at most MAX_SCORED_EXAMPLES of) the
    labelled examples, and how many."""
    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    auc, count = tf.keras.metrics.AUC(), 0
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(MAX_SCORED_EXAMPLES)
    for batch in records.batch(1024):
        labels = tf.io.parse_example(batch, {features.LABEL: tf.io.FixedLenFeature(
            [], tf.int64, default_value=0)})[features.LABEL]
        scores = signature(**{features.EXAMPLES_KEY: batch})[features.PREDICTION_KEY]
        auc.update_state(labels, scores)
        count += int(np.size(labels.numpy()))
    return float(auc.result().numpy()), count


def assess(max_auc_drop: float, model: standard_artifacts.Model,
           examples: standard_artifacts.Examples,
           drift_report: standard_artifacts.ExampleAnomalies,
           evaluation: standard_artifacts.ModelEvaluation) -> None:
    """Scores the served `model` on the newest span of `examples` and records on
    `evaluation` whether its AUC fell more than `max_auc_drop` since its push."""
    result = {"span": examples.get_int_custom_property(properties.SPAN),
              "drifted_features": drift_report.get_string_custom_property(
                  properties.DRIFTED_FEATURES),
              properties.DRIFT_SCORES: drift_report.get_string_custom_property(
                  properties.DRIFT_SCORES)}
    model_dir = path_utils.serving_model_path(model.uri)
    if model.get_int_custom_property(properties.FOUND):
        window = WindowManifest.from_json(
            io_utils.read_string_file(posixpath.join(examples.uri, MANIFEST_FILE)))
        files = [f for split in ("train", "eval")
                 for f in window.files(split, [window.newest])]
        auc, count = score_auc(model_dir, files)
        version = model.get_int_custom_property(properties.SERVED_VERSION)
        pushed_auc = push_record(model_dir).get("auc")
        drop = None if pushed_auc is None else pushed_auc - auc
        result.update(served_version=version, auc=auc, examples=count, auc_when_pushed=pushed_auc,
                      drop=drop, concept_drift=drop is not None and drop > max_auc_drop)
        if drop is None:
            then = "no AUC was recorded at its push"
        else:
            change = f"fell {drop:.4f}" if drop > 0 else f"rose {-drop:.4f}"
            then = f"{pushed_auc:.4f} when pushed ({change}; limit: a fall of {max_auc_drop})"
        verdict = "concept drift" if result["concept_drift"] else "no concept drift"
        progress.note(f"{verdict}: served version {version} scores AUC {auc:.4f} on span "
                      f"{result['span']} ({count} trips), {then}")
    else:
        progress.note("concept drift: no served model to score on the new span yet")
    for key, value in result.items():
        if isinstance(value, str):
            evaluation.set_string_custom_property(key, value)
        elif isinstance(value, bool):
            evaluation.set_int_custom_property(key, int(value))
        elif isinstance(value, int):
            evaluation.set_int_custom_property(key, value)
        elif isinstance(value, float):
            evaluation.set_float_custom_property(key, value)
    io_utils.write_string_file(os.path.join(evaluation.uri, RESULT_FILE), json.dumps(result))
