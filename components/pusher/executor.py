"""Pusher: a blessed candidate becomes a new version in TF Serving's layout, whole or not at all.

TFX's Pusher checks the blessings and copies the model into `<base>/<unix time>/` with
`saved_model.pb` last. This one keeps those checks (TFX's executor methods) and the PushedModel
artifact TFX tools read, and adds what continuous training needs:
- the version appears at once: on a local or mounted file system it is written to a hidden
  staging folder and renamed into place (TF Serving ignores non-numeric folders); object stores
  have no rename, so there `saved_model.pb` is written last, as TFX does, and servers wait for
  it;
- what monitoring compares serving with, beside the model (`assets.extra/ctpipe/`, ignored by
  TF Serving): `push.json`, the candidate's and the baseline's AUC at the push (later runs tell
  concept drift from it) and the distribution of its answers on the eval examples (infra
  validation served them); `training_statistics.pb`, statistics of a sample of its training
  window (`ctpipe monitor` measures skew against them);
- a version number that never collides with an existing one;
- with a model config file, the version's label as the rollout asks (`stable` directly, or
  `canary` / `shadow` for the gateway while `stable` stays);
- one line in `ctpipe run` saying what was pushed, or why nothing was.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import time
from pathlib import Path

import tensorflow_model_analysis as tfma
from tfx.components.pusher import executor as tfx_pusher
from tfx.components.util import model_utils
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from ctpipe.common import progress, properties
from ctpipe.common.layout import PUSH_RECORD_FILE, SAVED_MODEL_FILE, TRAINING_STATISTICS_FILE
from ctpipe.components.infra_validation.executor import EVAL_PREDICTIONS_FILE
from ctpipe.serving.client.version_labels import label_pushed_version

log = logging.getLogger(__name__)

MODEL_KEY = standard_component_specs.MODEL_KEY
MODEL_BLESSING_KEY = standard_component_specs.MODEL_BLESSING_KEY
INFRA_BLESSING_KEY = standard_component_specs.INFRA_BLESSING_KEY
EVALUATION_KEY = "evaluation"
WINDOW_STATISTICS_KEY = "window_statistics"
PUSHED_MODEL_KEY = standard_component_specs.PUSHED_MODEL_KEY


def overall_auc(evaluation_uri: str) -> dict[str, float]:
    """The overall AUC of the candidate and (if evaluated) the baseline, by TFMA's results."""
    result: dict[str, float] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for entry in metrics.metric_keys_and_values:
            if entry.key.name == "auc" and not entry.key.is_diff:
                who = "baseline_auc" if entry.key.model_name == "baseline" else "auc"
                result[who] = entry.value.double_value.value
    return result


def new_version(serving_model_dir: str) -> int:
    """The push time in seconds, as TFX versions pushes, moved past any existing version."""
    existing = {int(name.rstrip("/")) for name in (
        fileio.listdir(serving_model_dir) if fileio.isdir(serving_model_dir) else [])
        if name.rstrip("/").isdigit()}
    version = int(time.time())
    while version in existing:
        version += 1
    return version


def push(model_dir: str, serving_model_dir: str, version: int,
         extras: dict[str, bytes]) -> str:
    """Writes the model and `extras` (path in the version folder -> content) as
    `<serving_model_dir>/<version>`; returns it."""
    target = posixpath.join(serving_model_dir, str(version))
    if "://" in serving_model_dir:
        io_utils.copy_dir(model_dir, target, deny_regex_patterns=[r"saved_model\.pb"])
        _write_extras(target, extras)
        io_utils.copy_file(posixpath.join(model_dir, SAVED_MODEL_FILE),
                           posixpath.join(target, SAVED_MODEL_FILE))
        return target
    staging = posixpath.join(serving_model_dir, f".push-{version}-{os.getpid()}")
    try:
        io_utils.copy_dir(model_dir, staging)
        _write_extras(staging, extras)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_extras(folder: str, extras: dict[str, bytes]) -> None:
    for path, content in extras.items():
        io_utils.write_bytes_file(posixpath.join(folder, path), content)


class Executor(tfx_pusher.Executor):
    """TFX's blessing checks and PushedModel marks; our version folder and push record."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        pushed = output_dict[PUSHED_MODEL_KEY][0]
        aucs = overall_auc(input_dict[EVALUATION_KEY][0].uri)
        refusal = self._refusal(input_dict)
        if refusal:
            self._MarkNotPushed(pushed)
            progress.note(f"Pusher: nothing pushed: {refusal} ({_describe(aucs)})")
            return
        serving_model_dir = exec_properties["serving_model_dir"]
        version = new_version(serving_model_dir)
        infra = input_dict[INFRA_BLESSING_KEY][0]
        record = {"pushed_at": int(time.time()), **aucs, "eval_predictions": json.loads(
            io_utils.read_string_file(posixpath.join(infra.uri, EVAL_PREDICTIONS_FILE)))}
        statistics = posixpath.join(input_dict[WINDOW_STATISTICS_KEY][0].uri,
                                    f"Split-{properties.SAMPLE_SPLIT}",
                                    properties.STATISTICS_FILE)
        target = push(self.GetModelPath(input_dict), serving_model_dir, version, {
            PUSH_RECORD_FILE: json.dumps(record).encode(),
            TRAINING_STATISTICS_FILE: io_utils.read_bytes_file(statistics)})
        self._MarkPushed(pushed, pushed_destination=target, pushed_version=str(version))
        progress.note(f"Pusher: pushed version {version} to {serving_model_dir} "
                      f"({_describe(aucs)})")
        if exec_properties["model_config"]:
            self._label(version, exec_properties)

    @staticmethod
    def _label(version: int, exec_properties) -> None:
        """Labels the version in TF Serving's model config as the rollout asks."""
        changes = label_pushed_version(Path(exec_properties["model_config"]),
                                       exec_properties["model_name"], version,
                                       exec_properties["rollout"])
        progress.note(f"Pusher: rollout {exec_properties['rollout']}: "
                      + "; ".join(change.describe() for change in changes))

    @staticmethod
    def _refusal(input_dict) -> str:
        if not model_utils.is_model_blessed(input_dict[MODEL_BLESSING_KEY][0]):
            return "the Evaluator did not bless the candidate (see its thresholds)"
        if not model_utils.is_infra_validated(input_dict[INFRA_BLESSING_KEY][0]):
            return "the candidate failed infra validation"
        return ""


def _describe(aucs: dict[str, float]) -> str:
    parts = [f"candidate AUC {aucs['auc']:.4f}" if "auc" in aucs else "no AUC computed"]
    if "baseline_auc" in aucs:
        parts.append(f"served model {aucs['baseline_auc']:.4f} on the same examples")
    return ", ".join(parts)
