"""TensorBoard logs of every training: scalars, hyperparameters and the graph.

TFX's ModelRun artifact (`fn_args.model_run_dir`) is what TFX, KFP and Vertex show as a
training's TensorBoard. But TFX gives every Trainer execution a fresh ModelRun folder, while a
killed training resumes in a new execution from the checkpoint of its job. So with checkpoints
on, the events are written next to the job's checkpoints (`<job folder>/tensorboard/`, which
outlives executions), numbered by the global step, and copied into the execution's ModelRun when
the training ends: a resumed job's ModelRun holds the earlier attempt's events and its own, one
continuous curve. The events are flushed before every checkpoint save, so the curve has no gap;
a killed process may have logged steps past its last checkpoint, so a resumed job first cuts the
earlier events back to the step it resumes from: every reader (TensorBoard's Python reader, its
Rust data server, Vertex's uploader) sees each step once. Without checkpoints the events go
straight into the ModelRun.

Written with TensorBoard's own event writer and summary protos (no TensorFlow summary ops), to
any file system `tf.io.gfile` opens.
"""
from __future__ import annotations

import logging
import posixpath
import time
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from ctpipe.models.export import serving_function

log = logging.getLogger(__name__)

# Beside a job's checkpoints: the events of all its attempts.
JOB_EVENTS_FOLDER = "tensorboard"
EVENT_FILE_PATTERN = "events.out.tfevents.*"
TRAIN_PREFIX, VALIDATION_PREFIX = "train", "validation"


def hparams_values(values: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Values the hparams plugin takes (bool, number, string): sequences become "64,32"."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif value is None:
            value = ""
        flat[name] = value
    return flat


def cut_after(logdir: str, step: int) -> int:
    """Drops the summaries logged after `step` from the event files in `logdir` (a killed
    attempt logged past the checkpoint its job resumes from); returns how many were dropped.
    Each file is rewritten beside itself and renamed over it, so a kill meanwhile leaves it
    whole."""
    dropped = 0
    for path in sorted(tf.io.gfile.glob(posixpath.join(logdir, EVENT_FILE_PATTERN))):
        events = [event_pb2.Event.FromString(record.numpy())
                  for record in tf.data.TFRecordDataset(path)]
        kept = [e for e in events if not (e.HasField("summary") and e.step > step)]
        if len(kept) == len(events):
            continue
        partial = path + ".cut"
        with tf.io.TFRecordWriter(partial) as writer:
            for event in kept:
                writer.write(event.SerializeToString())
        tf.io.gfile.rename(partial, path, overwrite=True)
        dropped += len(events) - len(kept)
    return dropped


def copy_events(source: str, target: str) -> list[str]:
    """Copies the event files of `source` into `target` (the execution's ModelRun)."""
    tf.io.gfile.makedirs(target)
    copied = []
    for path in sorted(tf.io.gfile.glob(posixpath.join(source, EVENT_FILE_PATTERN))):
        destination = posixpath.join(target, posixpath.basename(path))
        tf.io.gfile.copy(path, destination, overwrite=True)
        copied.append(destination)
    return copied


class TrainingBoard:
    """The event file of one training attempt.

    `logdir` is where this attempt writes (the job's events folder, or the ModelRun without
    checkpoints); `model_run_dir` receives the job's events at `publish`. The training loss is
    logged every `every_steps` global steps, the other metrics at epoch ends (`_BoardCallback`);
    `flush_every` is the checkpoint interval.
    """

    def __init__(self, logdir: str, model_run_dir: str, first_step: int, every_steps: int,
                 flush_every: int | None = None):
        self.logdir, self.model_run_dir = logdir, model_run_dir
        self.first_step, self.every_steps, self.flush_every = first_step, every_steps, flush_every
        if first_step:
            dropped = cut_after(logdir, first_step)
            if dropped:
                log.info("TensorBoard: dropped %d summaries logged after step %d by the "
                         "interrupted attempt", dropped, first_step)
        self._writer = EventFileWriter(logdir)

    def start(self, model: keras.Model, hparams: Mapping[str, Any], trial_id: str) -> None:
        """Hyperparameters and the serving graph, once per job (a resumed attempt has them
        from the first one: its job key covers the same settings)."""
        if self.first_step:
            return
        self._add(hparams_summary.hparams_pb(hparams_values(hparams), trial_id=trial_id), 0)
        graph = serving_function(model).graph.as_graph_def()
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=0,
                                               graph_def=graph.SerializeToString()))

    def callback(self, first_step: int) -> keras.callbacks.Callback:
        """The callback of one `fit` call starting at global step `first_step`."""
        return _BoardCallback(self, first_step)

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            self._add(_scalar(f"{prefix}/{name}", float(value)), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def publish(self) -> None:
        """The job's events into the ModelRun (nothing to do when written there)."""
        self.close()
        if self.logdir.rstrip("/") != self.model_run_dir.rstrip("/"):
            copy_events(self.logdir, self.model_run_dir)
        log.info("TensorBoard logs in %s", self.model_run_dir)

    def _add(self, summary, step: int) -> None:
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step,
                                               summary=summary))


def _scalar(tag: str, value: float) -> summary_pb2.Summary:
    """A scalar as TensorBoard's scalars plugin stores it (a float32 tensor)."""
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=scalar_metadata.create_summary_metadata(display_name=tag,
                                                                  description=""),
        tensor=tensor_util.make_tensor_proto(np.float32(value)))])


class _BoardCallback(keras.callbacks.Callback):
    """Keras' logs hold epoch-to-date values, which restart wherever a `fit` call starts (a
    resume mid-epoch). So the training loss is logged as the mean of the steps since the last
    point (from the running means: the same value whether or not the job was resumed there),
    the other training metrics (AUC is no mean) at epoch ends, validation at epoch ends."""

    def __init__(self, board: TrainingBoard, first_step: int):
        super().__init__()
        self.board = board
        self.step = first_step
        self._batches = self._logged_batches = 0
        self._logged_sum = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = self._logged_batches = 0
        self._logged_sum = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1  # counted here, as the checkpoint callback does: no device sync
        self._batches += 1
        if self.step % self.board.every_steps == 0:
            self._log_loss(float((logs or {})["loss"]))
        if self.board.flush_every and self.step % self.board.flush_every == 0:
            self.board.flush()  # before the checkpoint of this step is saved: no gap

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._batches > self._logged_batches:
            self._log_loss(float(logs["loss"]))
        self.board.scalars(TRAIN_PREFIX, {k: v for k, v in logs.items()
                                          if k != "loss" and not k.startswith("val_")}, self.step)
        self.board.scalars(VALIDATION_PREFIX, {k[len("val_"):]: v for k, v in logs.items()
                                               if k.startswith("val_")}, self.step)
        self.board.flush()

    def _log_loss(self, running_mean: float) -> None:
        total = running_mean * self._batches
        mean = (total - self._logged_sum) / (self._batches - self._logged_batches)
        self.board.scalars(TRAIN_PREFIX, {"loss": mean}, self.step)
        self._logged_sum, self._logged_batches = total, self._batches
