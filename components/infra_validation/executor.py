"""Infra validation before the push: the candidate must load and answer in a real server.

Like TFX's InfraValidator: the candidate's serving folder becomes version 1 of a temporary base
path, our server (TF Serving's contract) loads it on a free loopback port, GetModelStatus is
polled until AVAILABLE (a version in END fails at once), then real eval examples go through
Predict over gRPC with the same client users have. The server runs inside the component's
process: a separate `ctpipe serve` process would add a fresh TensorFlow import (about 15 s) to
every run, and buys no isolation here, since the Evaluator has already loaded and run the same
SavedModel in the pipeline's process. Only an answered request with one finite probability
per example counts. The result is an InfraBlessing whose `blessed` custom property (1/0) the
Pusher checks (an unblessed candidate is not pushed), with the distribution of the candidate's
answers on the eval examples, which the Pusher keeps with the model for monitoring.

Cache: the outputs depend only on the model, the examples and the parameters, which form the
cache key, so a re-run on unchanged inputs reuses the blessing. (No `from __future__ import
annotations` here: TFX's @component reads the annotations as types.)
"""

import dataclasses
import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Sequence

import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from ctpipe.serving.client.errors import ClientError
from ctpipe.serving.client.grpc_client import PredictionClient
from ctpipe.serving.server import model_server as server
from ctpipe.serving.server.errors import StartupError
from ctpipe.serving.server.flags import LOOPBACK, ServerOptions
from ctpipe.validation.drift import prediction_summary

log = logging.getLogger(__name__)

BLESSED_PROPERTY = "blessed"  # what TFX's Pusher reads (model_utils.is_infra_validated)
# TFX's InfraValidator writes these marker files; tools that look for them keep working.
BLESSED_FILE = "INFRA_BLESSED"
NOT_BLESSED_FILE = "INFRA_NOT_BLESSED"
REASON_PROPERTY = "reason"
CANDIDATE_VERSION = 1
# Examples per Predict request: the eval set goes through the server in a few requests.
REQUEST_ROWS = 512
EVAL_PREDICTIONS_FILE = "eval_predictions.json"
EVAL_SPLIT = "eval"


@dataclasses.dataclass(frozen=True)
class InfraCheck:
    """The verdict on one candidate: served and answered (blessed), or not and why."""

    blessed: bool
    reason: str  # one line, kept on the blessing artifact
    # What the served candidate answered, in request order (empty when it did not answer).
    probabilities: tuple[float, ...] = ()


def check_serving(serving_dir: str, serialized_examples: Sequence[bytes], model_name: str,
                  ready_timeout: float = 120.0, request_timeout: float = 30.0) -> InfraCheck:
    """Serves `serving_dir` as version 1 of `model_name` and scores the examples through it."""
    if not serialized_examples:
        raise ValueError("infra validation needs at least one example")
    # TF Serving cannot load such a folder; it would only say so after its load retries.
    if not any(fileio.exists(f"{serving_dir}/{name}")
               for name in ("saved_model.pb", "saved_model.pbtxt")):
        return InfraCheck(False, f"no saved_model.pb in {serving_dir}: not a SavedModel")
    with tempfile.TemporaryDirectory(prefix="ctpipe-infra-") as scratch:
        base_path = Path(scratch) / model_name
        # Through TFX's file I/O: on Kubeflow the model may be in a bucket.
        io_utils.copy_dir(serving_dir, str(base_path / str(CANDIDATE_VERSION)))
        # Poll the base path once: the candidate is the only version that will ever be there.
        options = ServerOptions(port=0, grpc_bind_address=LOOPBACK, model_name=model_name,
                                model_base_path=str(base_path), file_system_poll_wait_seconds=0,
                                max_num_load_retries=0)
        try:
            handle = server.start(options)
        except StartupError as err:
            return InfraCheck(False, f"the candidate did not load: {err}")
        try:
            with PredictionClient(f"{LOOPBACK}:{handle.port}", model_name,
                                  timeout=request_timeout) as client:
                client.wait_until_available(ready_timeout)
                answers = [client.predict(serialized_examples[start:start + REQUEST_ROWS],
                                          version=CANDIDATE_VERSION)
                           for start in range(0, len(serialized_examples), REQUEST_ROWS)]
        except ClientError as err:
            return InfraCheck(False, str(err))
        finally:
            handle.stop()
    probabilities = tuple(p for answer in answers for p in answer.probabilities)
    bad = [p for p in probabilities if not (math.isfinite(p) and 0.0 <= p <= 1.0)]
    if bad:
        return InfraCheck(False, f"{len(bad)} of {len(probabilities)} predictions are "
                                 f"not probabilities (e.g. {bad[0]})", probabilities)
    versions = {answer.model_version for answer in answers}
    if versions != {CANDIDATE_VERSION}:
        return InfraCheck(False, f"server answered with version(s) {sorted(versions)}, "
                                 f"expected {CANDIDATE_VERSION}", probabilities)
    return InfraCheck(True, f"served and scored {len(serialized_examples)} eval examples",
                      probabilities)


def read_examples(examples_uri: str, split: str, limit: int) -> list[bytes]:
    """The first `limit` serialized tf.Examples of a split (ExampleGen's gzipped TFRecords)."""
    files = sorted(tf.io.gfile.glob(f"{examples_uri}/Split-{split}/*"))
    if not files:
        raise FileNotFoundError(f"no '{split}' examples under {examples_uri}")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
    return [record.numpy() for record in dataset]


def record_blessing(blessing: standard_artifacts.InfraBlessing, check: InfraCheck) -> None:
    """TFX's blessing marks, and the distribution of the candidate's answers on the eval
    examples (`eval_predictions.json`), which the Pusher keeps with the model."""
    blessing.set_int_custom_property(BLESSED_PROPERTY, int(check.blessed))
    blessing.set_string_custom_property(REASON_PROPERTY, check.reason[:1000])
    fileio.makedirs(blessing.uri)
    marker = BLESSED_FILE if check.blessed else NOT_BLESSED_FILE
    with fileio.open(f"{blessing.uri}/{marker}", "w") as handle:
        handle.write(check.reason)
    with fileio.open(f"{blessing.uri}/{EVAL_PREDICTIONS_FILE}", "w") as handle:
        handle.write(json.dumps(prediction_summary(check.probabilities)))
