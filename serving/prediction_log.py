"""Sampled request/response logging as `PredictionLog` TFRecords, for later monitoring.

Configured per model by TF Serving's own `logging_config` in the model config
(`log_collector_config { type: "tfrecord" filename_prefix: "/logs/big_tipper" }` and
`sampling_config { sampling_rate: 0.1 }`), or for a single model by the flags
`--prediction_log_file_prefix` / `--prediction_log_sampling_rate`. Files are
`<prefix>-NNNNN.tfrecord`; a file is closed past `--prediction_log_file_max_bytes` and only the
newest `--prediction_log_max_files` are kept. A background thread writes, so requests only pay
for sampling and serialization.

The gateway's records carry the request id (`x-request-id`) in `log_metadata.request_origin`
as `x-request-id:<id>` (TF Serving's LogMetadata has no request id field; request_origin is
the request's identifier as the logging side knows it), and the gateway samples by that id:
the same ids are logged every time, independent of routing (`request_id`, `sampled`).

Shared by `ctpipe serve` (TensorFlow's proto classes) and `ctpipe gateway` (the client's): the
PredictionLog is built from the request's own descriptor pool and written with
`ctpipe.common.tfrecord`, so this module never imports TensorFlow and both write the same files.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import queue
import random
import re
import threading
import time
from typing import Any, BinaryIO, Iterator

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ctpipe.common import tfrecord
from ctpipe.serving.client import protos

log = logging.getLogger(__name__)

SUPPORTED_COLLECTORS = ("", "tfrecord")
_FILE_NUMBER = re.compile(r"-(\d+)\.tfrecord$")
REQUEST_ID = "x-request-id"  # gRPC metadata key and HTTP header
_ORIGIN_PREFIX = f"{REQUEST_ID}:"
# Which PredictionLog field receives which kind of request.
LOG_FIELDS = {"Predict": "predict_log", "Classify": "classify_log", "Regress": "regress_log",
              "MultiInference": "multi_inference_log"}


class PredictionLogger:
    """One model's sampled log; `maybe_log` is called on the request path."""

    def __init__(self, config: Any, *, max_bytes: int, max_files: int):
        """`config`: a LoggingConfig (TF Serving's model config field), of either class."""
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
        self._max_bytes, self._max_files = max_bytes, max_files
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)
        os.makedirs(os.path.dirname(os.path.abspath(self.prefix)), exist_ok=True)
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    def sampled(self, request_id: str | None = None) -> bool:
        """Whether to log a request (decided once, so a pair of answers to one request, e.g. a
        shadow's, is logged together): by its id's hash when it has one (the same requests on
        every replay), else at random."""
        if self.sampling_rate <= 0:
            return False
        if request_id is None:
            return random.random() < self.sampling_rate
        return _sampling_point(request_id) < self.sampling_rate

    def maybe_log(self, api: str, request: Message, response: Message, model_name: str,
                  version: int, signature_name: str) -> None:
        if self.sampled():
            self.log(api, request, response, model_name, version, signature_name)

    def log(self, api: str, request: Message, response: Message, model_name: str,
            version: int, signature_name: str, request_id: str | None = None) -> None:
        """Queues one record (no sampling decision here); drops it when the queue is full."""
        entry = _log_class(request)()
        metadata = entry.log_metadata
        if request_id is not None:
            metadata.request_origin = _ORIGIN_PREFIX + request_id
        metadata.model_spec.name, metadata.model_spec.version.value = model_name, version
        metadata.model_spec.signature_name = signature_name
        metadata.sampling_config.sampling_rate = self.sampling_rate
        metadata.saved_model_tags.append("serve")
        metadata.timestamp_secs = int(time.time())
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
        writer: BinaryIO | None = None
        written = 0
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    break
                if writer is None:
                    writer, written = open(self._next_path(), "xb"), 0
                    self._rotate_old()
                writer.write(tfrecord.frame(record))
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


def _sampling_point(request_id: str) -> float:
    """A request id's stable point in [0, 1), keyed apart from the router's hash (so being
    sampled says nothing about which side answered)."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8, key=b"ctpipe-sampling").digest()
    return int.from_bytes(digest, "big") / 2**64


def request_id(record: Any) -> str | None:
    """The request id the gateway logged with a record, None for records without one."""
    origin = record.log_metadata.request_origin
    return origin[len(_ORIGIN_PREFIX):] if origin.startswith(_ORIGIN_PREFIX) else None


_LOG_CLASSES: dict[Any, type[Message]] = {}


def _log_class(request: Message) -> type[Message]:
    """PredictionLog from the request's descriptor pool, so the request copies into it."""
    pool = request.DESCRIPTOR.file.pool
    if pool not in _LOG_CLASSES:
        _LOG_CLASSES[pool] = GetMessageClass(
            pool.FindMessageTypeByName("tensorflow.serving.PredictionLog"))
    return _LOG_CLASSES[pool]


def read_logs(prefix: str) -> Iterator[Any]:
    """Every record of `<prefix>-*.tfrecord` (a glob pattern may stand in the prefix, e.g.
    one folder per gateway pod), oldest file first, as the client's PredictionLog messages."""
    paths = sorted(glob.glob(f"{prefix}-*.tfrecord"), key=lambda p: (os.path.getmtime(p), p))
    for path in paths:
        with open(path, "rb") as handle:
            for record in tfrecord.read_records(handle, path):
                yield protos.PredictionLog.FromString(record)
