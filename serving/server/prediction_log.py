"""Sampled request/response logging as `PredictionLog` TFRecords, for later monitoring.

Configured per model by TF Serving's own `logging_config` in the model config
(`log_collector_config { type: "tfrecord" filename_prefix: "/logs/big_tipper" }` and
`sampling_config { sampling_rate: 0.1 }`), or for a single model by the flags
`--prediction_log_file_prefix` / `--prediction_log_sampling_rate`. Files are
`<prefix>-NNNNN.tfrecord`; a file is closed past `--prediction_log_file_max_bytes` and only the
newest `--prediction_log_max_files` are kept. A background thread writes, so requests only pay
for sampling and serialization.
"""
from __future__ import annotations

import glob
import logging
import os
import queue
import random
import re
import threading
import time

from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import logging_config_pb2

log = logging.getLogger(__name__)

SUPPORTED_COLLECTORS = ("", "tfrecord")
_FILE_NUMBER = re.compile(r"-(\d+)\.tfrecord$")
# Which PredictionLog field receives which kind of request.
LOG_FIELDS = {"Predict": "predict_log", "Classify": "classify_log", "Regress": "regress_log",
              "MultiInference": "multi_inference_log"}


class PredictionLogger:
    """One model's sampled log; `maybe_log` is called on the request path."""

    def __init__(self, config: logging_config_pb2.LoggingConfig, *, max_bytes: int, max_files: int):
        collector = config.log_collector_config
        if collector.type not in SUPPORTED_COLLECTORS:
            raise ValueError(f"log_collector_config.type {collector.type!r} is not supported "
                             f"(use \"tfrecord\")")
        if not collector.filename_prefix:
            raise ValueError("log_collector_config.filename_prefix is required")
        rate = config.sampling_config.sampling_rate
        if not 0 <= rate <= 1:
            raise ValueError(f"sampling_rate must be within [0, 1], got {rate}")
        self.prefix, self.sampling_rate = collector.filename_prefix, rate
        self._sampling_config = config.sampling_config
        self._max_bytes, self._max_files = max_bytes, max_files
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)
        os.makedirs(os.path.dirname(os.path.abspath(self.prefix)), exist_ok=True)
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    def maybe_log(self, api: str, request, response, model_name: str, version: int,
                  signature_name: str) -> None:
        if self.sampling_rate <= 0 or random.random() >= self.sampling_rate:
            return
        entry = prediction_log_pb2.PredictionLog()
        metadata = entry.log_metadata
        metadata.model_spec.name, metadata.model_spec.version.value = model_name, version
        metadata.model_spec.signature_name = signature_name
        metadata.sampling_config.CopyFrom(self._sampling_config)
        metadata.saved_model_tags.append("serve")
        logged = getattr(entry, LOG_FIELDS[api])
        logged.request.CopyFrom(request)
        logged.response.CopyFrom(response)
        try:
            self._queue.put_nowait(entry.SerializeToString())
        except queue.Full:
            log.warning("prediction log queue full: dropping a sampled record of %s", model_name)

    def files(self) -> list[str]:
        return sorted(glob.glob(f"{glob.escape(self.prefix)}-*.tfrecord"))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def flush(self, timeout: float = 5.0) -> None:
        """Waits until every queued record is on disk (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _next_path(self) -> str:
        numbers = [int(m.group(1)) for f in self.files() if (m := _FILE_NUMBER.search(f))]
        return f"{self.prefix}-{max(numbers, default=0) + 1:05d}.tfrecord"

    def _rotate_old(self) -> None:
        for old in self.files()[:-self._max_files]:
            os.remove(old)
            log.info("prediction log rotated out %s", old)

    def _write_loop(self) -> None:
        import tensorflow as tf

        writer, written = None, 0
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    break
                if writer is None:
                    path = self._next_path()
                    writer, written = tf.io.TFRecordWriter(path), 0
                    self._rotate_old()
                writer.write(record)
                written += len(record)
                if written >= self._max_bytes:
                    writer.close()
                    writer = None
                elif self._queue.empty():
                    writer.flush()
            finally:
                self._queue.task_done()
        if writer is not None:
            writer.close()
