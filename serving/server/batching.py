"""Server-side batching of concurrent requests, with TF Serving's parameters and errors.

Each (version, signature) has a queue of batches. A request's rows join the open batch if they
fit within `max_batch_size`, else open a new batch; more than `max_enqueued_batches` waiting
batches make the queue full (UNAVAILABLE). `num_batch_threads` threads run a batch when it is full,
when a newer batch exists behind it, or `batch_timeout_micros` after it opened; it is padded up to
the next `allowed_batch_sizes` entry (with copies of its first row), run once, and split back.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from typing import Callable, Mapping

import grpc
import numpy as np

from ctpipe.serving.server.config_files import BatchingOptions
from ctpipe.serving.server.errors import RequestError, invalid
from ctpipe.serving.server.servable import Servable, Signature

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Task:
    """One request's rows; `on_done(task)` is called from a batch thread with outputs or error."""

    signature: Signature
    inputs: Mapping[str, np.ndarray]
    size: int
    on_done: Callable[["Task"], None]
    outputs: dict[str, np.ndarray] | None = None
    error: RequestError | None = None


@dataclasses.dataclass
class _Batch:
    opened: float
    tasks: list[Task] = dataclasses.field(default_factory=list)
    size: int = 0


class BatchingRunner:
    """A `Runner` (see ctpipe.serving.server.inference) that batches; `stop()` ends its threads."""

    def __init__(self, options: BatchingOptions):
        self.options = options
        self._queues: dict[tuple, deque[_Batch]] = {}
        self._condition = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
                         for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def __call__(self, servable: Servable, signature: Signature,
                 inputs: Mapping[str, np.ndarray], timeout: float | None) -> dict[str, np.ndarray]:
        """Adds the request's rows to a batch and waits for it within `timeout` (on the
        request's own thread); errors of admission are raised at once."""
        done = threading.Event()
        task = Task(signature, inputs, self._task_size(inputs), lambda _: done.set())
        self._enqueue((servable.model_name, servable.version, signature.name, id(signature)), task)
        if not done.wait(timeout):
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if task.error is not None:
            raise task.error
        return task.outputs

    @staticmethod
    def _task_size(inputs: Mapping[str, np.ndarray]) -> int:
        sizes = set()
        for value in inputs.values():
            if value.ndim == 0:
                raise invalid("Batching Run() input tensors must have at least one dimension")
            sizes.add(value.shape[0])
        if len(sizes) != 1:
            raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
        return sizes.pop()

    def _enqueue(self, key: tuple, task: Task) -> None:
        limit = self.options.max_batch_size
        if task.size > limit:
            raise invalid(f"Task size {task.size} is larger than maximum input batch size {limit}")
        with self._condition:
            batches = self._queues.setdefault(key, deque())
            if not batches or batches[-1].size + task.size > limit:
                if len(batches) >= self.options.max_enqueued_batches:
                    raise RequestError(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue "
                                       "to which this task was submitted is full")
                batches.append(_Batch(time.monotonic()))
            batches[-1].tasks.append(task)
            batches[-1].size += task.size
            self._condition.notify()

    def _next_batch(self) -> _Batch | None:
        """Under the lock: a batch ready to run, or None with the time to wait."""
        timeout = self.options.batch_timeout_micros / 1e6
        while not self._stopped:
            now, wait = time.monotonic(), None
            for batches in self._queues.values():
                if not batches:
                    continue
                first = batches[0]
                due = first.opened + timeout
                if len(batches) > 1 or first.size >= self.options.max_batch_size or now >= due:
                    return batches.popleft()
                wait = due - now if wait is None else min(wait, due - now)
            self._condition.wait(wait)
        return None

    def _work(self) -> None:
        while True:
            with self._condition:
                batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _padded_size(self, size: int) -> int:
        return next((s for s in self.options.allowed_batch_sizes if s >= size), size)

    def _run(self, batch: _Batch) -> None:
        signature = batch.tasks[0].signature
        padded = self._padded_size(batch.size)
        try:
            merged = {}
            for alias in batch.tasks[0].inputs:
                parts = [task.inputs[alias] for task in batch.tasks]
                if padded > batch.size:
                    parts.append(np.repeat(parts[0][:1], padded - batch.size, axis=0))
                merged[alias] = np.concatenate(parts) if len(parts) > 1 else parts[0]
            outputs = signature.run(merged)
            offset = 0
            for task in batch.tasks:
                task.outputs = {}
                for alias, value in outputs.items():
                    if value.ndim == 0 or value.shape[0] != padded:
                        raise invalid(f"Batched output tensor {alias} has 0th dimension "
                                      f"{value.shape[:1]}, expected {padded}")
                    task.outputs[alias] = value[offset:offset + task.size]
                offset += task.size
        except RequestError as err:
            for task in batch.tasks:
                task.error = err
        except Exception as err:  # noqa: BLE001 - the waiting requests must get an answer
            log.exception("batch of %d rows failed", batch.size)
            for task in batch.tasks:
                task.error = RequestError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
        for task in batch.tasks:
            task.on_done(task)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
