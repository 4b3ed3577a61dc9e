"""Training checkpoints that outlive the process: one folder per training job.

TFX gives every Trainer execution fresh output URIs, so a killed execution's files are not found
again. A job folder is instead named by a hash of what defines the training job (input files,
hyperparameters, steps, seed, code version, starting weights); a re-run of the same job finds it
and resumes. Files go through tf.io.gfile, so the root may be a bucket.

Layout of `<root>/<job key>/`:
  ckpt-<step>.*   weights + optimizer state (tf.train.CheckpointManager: the `checkpoint` index
                  is replaced atomically after the files are written, so a kill mid-save leaves
                  the previous checkpoint usable)
  best-<step>.*   weights with the best validation metric so far
  state.json      job description and best checkpoint; rewritten at every save (its mtime
                  orders job folders for retention)
  final-<step>.*  the weights at the end of training
  FINISHED.json   written last when the training completed: a later run of the same job (its
                  execution was killed before the export landed) reuses the final or best
                  weights instead of training again
"""
from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import re
from typing import Any, Mapping, Sequence

import keras
import tensorflow as tf

from ctpipe.common.files import write_atomically
from ctpipe.models.options import CheckpointOptions

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
FINISHED_FILE = "FINISHED.json"
CHECKPOINT_NAME = "ckpt"
BEST_NAME = "best"
FINAL_NAME = "final"
_KEEP_LATEST = 2


def file_fingerprints(file_patterns: Sequence[str]) -> list[tuple[str, int]]:
    """(path, size) of every file matching the patterns: TFX artifact files are immutable, so
    path and size identify the examples without reading them."""
    files = sorted({f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)})
    return [(f, tf.io.gfile.stat(f).length) for f in files]


def job_key(description: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-able job description."""
    canonical = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _write_json_atomically(path: str, value: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def _read_json(path: str) -> dict[str, Any] | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())


def _last_activity(folder: str) -> float:
    """Seconds since the epoch of the job's last save (the folder's own time if none)."""
    for name in (STATE_FILE, FINISHED_FILE):
        path = posixpath.join(folder, name)
        if tf.io.gfile.exists(path):
            return tf.io.gfile.stat(path).mtime_nsec / 1e9
    return tf.io.gfile.stat(folder).mtime_nsec / 1e9


def prune_job_folders(root: str, keep: int, current: str) -> list[str]:
    """Retention: keeps the `keep` job folders with the most recent activity (always including
    `current`), deletes the others; returns the deleted folders."""
    if not tf.io.gfile.isdir(root):
        return []
    folders = [posixpath.join(root, name.rstrip("/")) for name in tf.io.gfile.listdir(root)]
    others = sorted((f for f in folders if tf.io.gfile.isdir(f) and f.rstrip("/") != current),
                    key=_last_activity, reverse=True)
    deleted = others[keep - 1:]
    for folder in deleted:
        log.info("checkpoint retention (keep the %d most recent jobs): deleting %s", keep, folder)
        tf.io.gfile.rmtree(folder)
    return deleted


class JobCheckpoints:
    """The checkpoints of one training job."""

    def __init__(self, options: CheckpointOptions, description: Mapping[str, Any]):
        self.options = options
        self.description = dict(description)
        self.key = job_key(description)
        self.folder = posixpath.join(options.root, self.key)
        self._state: dict[str, Any] = {"description": self.description, "best": None}

    def finished_step(self) -> int | None:
        """The last step of this job's completed training, or None if it never completed."""
        finished = _read_json(posixpath.join(self.folder, FINISHED_FILE))
        return None if finished is None else int(finished["step"])

    def open(self) -> int:
        """Prepares the folder; returns the step to resume from (0: start afresh)."""
        tf.io.gfile.makedirs(self.folder)
        prune_job_folders(self.options.root, self.options.keep_jobs, self.folder)
        state = _read_json(posixpath.join(self.folder, STATE_FILE))
        if state is not None:
            self._state = state
        latest = tf.train.latest_checkpoint(self.folder)
        step = int(re.search(r"-(\d+)$", latest).group(1)) if latest else 0
        best = self._state.get("best")
        if best and best["step"] > step:
            # Saved after the checkpoint we resume from: the resumed run will pass there again.
            self._state["best"] = None
        return step

    def manager(self, model: keras.Model) -> tf.train.CheckpointManager:
        """Saves weights and optimizer state of `model` as compiled now."""
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        return tf.train.CheckpointManager(checkpoint, self.folder, max_to_keep=_KEEP_LATEST,
                                          checkpoint_name=CHECKPOINT_NAME)

    def save(self, manager: tf.train.CheckpointManager, step: int) -> None:
        manager.save(checkpoint_number=step)
        _write_json_atomically(posixpath.join(self.folder, STATE_FILE), self._state)

    def restore(self, model: keras.Model, step: int, with_optimizer: bool) -> str:
        """Loads the checkpoint of `step` into `model` (and its optimizer); returns its path."""
        path = posixpath.join(self.folder, f"{CHECKPOINT_NAME}-{step}")
        if with_optimizer:
            model.optimizer.build(model.trainable_variables)
            status = tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(path)
            status.assert_existing_objects_matched()
        else:
            tf.train.Checkpoint(model=model).read(path).expect_partial()
        return path

    def offer_best(self, model: keras.Model, step: int, logs: Mapping[str, float]) -> None:
        """Keeps the weights of this epoch end when its validation metric is the best so far."""
        metric = self.options.best_metric
        if metric not in logs:
            raise ValueError(f"best_metric '{metric}' is not among the training metrics: "
                             f"{', '.join(sorted(logs))}")
        value = float(logs[metric])
        best = self._state.get("best")
        if best is not None:
            better = value < best["value"] if self.options.minimise else value > best["value"]
            if not better:
                return
        prefix = posixpath.join(self.folder, f"{BEST_NAME}-{step}")
        tf.train.Checkpoint(model=model).write(prefix)
        self._state["best"] = {"step": step, "value": value, "metric": metric, "path": prefix}
        _write_json_atomically(posixpath.join(self.folder, STATE_FILE), self._state)
        if best is not None and best["path"] != prefix:
            for stale in tf.io.gfile.glob(f"{best['path']}.*"):
                tf.io.gfile.remove(stale)

    @property
    def best(self) -> dict[str, Any] | None:
        return self._state.get("best")

    def restore_best(self, model: keras.Model) -> dict[str, Any]:
        best = self.best
        if best is None:
            raise ValueError(f"no best checkpoint was recorded in {self.folder} "
                             "(no validation ran)")
        tf.train.Checkpoint(model=model).read(best["path"]).expect_partial()
        return best

    def finish(self, model: keras.Model, step: int) -> None:
        """Keeps the final weights and marks the job complete (the marker is written last)."""
        final = posixpath.join(self.folder, f"{FINAL_NAME}-{step}")
        tf.train.Checkpoint(model=model).write(final)
        _write_json_atomically(posixpath.join(self.folder, FINISHED_FILE),
                               {"step": step, "best": self.best, "final": final})

    def restore_finished(self, model: keras.Model) -> dict[str, Any]:
        """Loads the weights a completed training exported (best or final) into `model`."""
        finished = _read_json(posixpath.join(self.folder, FINISHED_FILE))
        if finished is None:
            raise ValueError(f"the training of {self.folder} has not finished")
        self._state["best"] = finished["best"]
        if self.options.export == "best":
            return self.restore_best(model)
        tf.train.Checkpoint(model=model).read(finished["final"]).expect_partial()
        return {"step": finished["step"], "path": finished["final"]}


class CheckpointCallback(keras.callbacks.Callback):
    """Saves every `every_steps` global steps and offers each epoch end as the best."""

    def __init__(self, job: JobCheckpoints, first_step: int):
        super().__init__()
        self.job = job
        self.step = first_step
        self._manager: tf.train.CheckpointManager | None = None

    def on_train_begin(self, logs=None):
        self._manager = self.job.manager(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1  # counted here rather than read from the optimizer: no device sync
        if self.step % self.job.options.every_steps == 0:
            self.job.save(self._manager, self.step)

    def on_epoch_end(self, epoch, logs=None):
        self.job.offer_best(self.model, self.step, logs or {})
