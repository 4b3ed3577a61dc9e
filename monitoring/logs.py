"""Prediction logs as `ctpipe monitor` reads them: the last N logged requests (records of
`<prefix>-NNNNN.tfrecord`, newest files first; a wildcard in the prefix reads several servers'
logs), grouped by the model version that answered them. Formats: docs/monitoring.md.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from ctpipe.common.errors import UserError
from ctpipe.serving.server.metrics import predicted_probabilities, served_examples

_FILE_NUMBER = re.compile(r"-(\d+)\.tfrecord$")

class MonitorError(UserError):
    """The logs, the model versions or their stored references cannot be compared as given."""


@dataclasses.dataclass
class LoggedVersion:
    """The requests of the window one model version answered."""

    version: int
    requests: int = 0
    examples: list[bytes] = dataclasses.field(default_factory=list)
    probabilities: list[np.ndarray] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Window:
    """The logged requests read, grouped by version, and what could not be used."""

    files: list[str]
    records: int
    versions: dict[int, LoggedVersion]
    skipped: Counter
    notes: list[str]


def log_files(prefix: str) -> list[str]:
    """`<prefix>-NNNNN.tfrecord` files, oldest first by modification time (then number), so
    that a prefix with a wildcard (one folder per serving pod) orders several writers' files
    too. Local paths or any URI TensorFlow's file systems read."""
    found = []
    for path in tf.io.gfile.glob(f"{prefix}-*.tfrecord"):
        number = _FILE_NUMBER.search(path)
        if number is None:
            continue
        try:
            found.append((tf.io.gfile.stat(path).mtime_nsec, int(number.group(1)), path))
        except tf.errors.NotFoundError:  # rotated out since the listing
            continue
    return [path for *_, path in sorted(found)]


def _newest_records(files: Sequence[str], last: int,
                    notes: list[str]) -> tuple[list[bytes], list[str]]:
    """The last `last` records across `files` (newest files read first, whole), and the files
    read. A file that ends in a partial record (the server is writing it) or vanished (rotated
    out meanwhile) is read up to there and noted."""
    chunks: list[list[bytes]] = []
    count, read = 0, []
    for path in reversed(files):
        records: list[bytes] = []
        try:
            for record in tf.compat.v1.io.tf_record_iterator(path):
                records.append(record)
        except tf.errors.NotFoundError:
            notes.append(f"{path} was removed while being read (rotated out)")
        except tf.errors.DataLossError:
            notes.append(f"{path}: read {len(records)} records, then a partial or corrupt "
                         "record (a file the server is still writing ends like this)")
        chunks.append(records)
        read.append(path)
        count += len(records)
        if count >= last:
            break
    ordered = [record for chunk in reversed(chunks) for record in chunk]
    return ordered[-last:], list(reversed(read))


def read_window(prefix: str, model_name: str, last: int) -> Window:
    """The last `last` logged requests under `prefix`: Predict calls of `model_name` grouped by
    the version that answered; anything else is counted as skipped."""
    files = log_files(prefix)
    if not files:
        raise MonitorError(f"no prediction log files match {prefix}-*.tfrecord: does the "
                           "server log to this prefix (`ctpipe serve --prediction_log_file_prefix"
                           "`, or a model config's logging_config), and has it answered and "
                           "sampled any request yet?")
    notes: list[str] = []
    records, read = _newest_records(files, last, notes)
    versions: dict[int, LoggedVersion] = {}
    skipped: Counter = Counter()
    for record in records:
        entry = prediction_log_pb2.PredictionLog.FromString(record)
        kind = entry.WhichOneof("log_type")
        spec = entry.log_metadata.model_spec
        if kind != "predict_log":
            skipped[f"{kind or 'empty'} records"] += 1
            continue
        if spec.name != model_name:
            skipped[f"requests of model '{spec.name}'"] += 1
            continue
        examples = served_examples(entry.predict_log.request)
        if examples is None:
            skipped["requests without serialized tf.Examples"] += 1
            continue
        version = spec.version.value or entry.predict_log.response.model_spec.version.value
        logged = versions.setdefault(version, LoggedVersion(version))
        logged.requests += 1
        logged.examples.extend(examples)
        logged.probabilities.append(
            predicted_probabilities(entry.predict_log.response, len(examples)))
    if not versions:
        found = ", ".join(f"{what}: {count}" for what, count in skipped.items()) or "none"
        raise MonitorError(f"the {len(records)} logged requests read from {prefix}-*.tfrecord "
                           f"hold no Predict call of model '{model_name}' (found {found}); "
                           "pass --model-name if the logs are another model's")
    return Window(read, len(records), versions, skipped, notes)
