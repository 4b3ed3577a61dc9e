"""Training as a pure function of files and settings; no TFX here."""
from __future__ import annotations

import dataclasses
import logging
import math
import posixpath
from collections import defaultdict
from typing import Any, Sequence

import keras

from ctpipe import models
from ctpipe.common import progress
from ctpipe.common.window import WindowManifest
from ctpipe.models.checkpoints import CheckpointCallback, JobCheckpoints, file_fingerprints
from ctpipe.models.inputs import load_columns, make_dataset
from ctpipe.models.model import Phase, apply_phase, build_model, fit_feature_stats
from ctpipe.models.options import (
    CheckpointOptions,
    HParams,
    IncrementalOptions,
    StalenessLimits,
    TransferOptions,
    WarmStartOptions,
)
from ctpipe.models.tensorboard import JOB_EVENTS_FOLDER, TrainingBoard, copy_events
from ctpipe.models.transfer import transfer_phases, transferred_model
from ctpipe.models.warm_start import NewData, try_warm_start

log = logging.getLogger(__name__)

# A training validates (and may checkpoint-export) at most this many times: at real size a
# fixed cadence of 100 steps would spend as long validating as training.
MAX_VALIDATIONS = 20


def steps_for(epochs: float, examples: int, batch_size: int, floor: int) -> int:
    """Steps of `epochs` passes over `examples`, at least `floor`."""
    return max(floor, math.ceil(epochs * examples / batch_size))


@dataclasses.dataclass(frozen=True)
class Incremental:
    """Training on the newest span plus a replay sample, used when the run warm-starts."""

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    # (file, examples): the first examples of each older span's training file.
    replay: tuple[tuple[str, int], ...]
    steps: int
    description: str


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    model: keras.Model
    history: dict[str, list[float]]
    steps: int
    # "scratch", "warm start from <base model>" or "transfer (<strategy>) from <model>".
    origin: str
    resumed_from_step: int = 0
    # The best checkpoint's record when it was exported instead of the last weights.
    exported_best: dict[str, Any] | None = None
    # What was trained on, e.g. "spans 1-16" or "span 16 + 2000 replayed examples of 1-15".
    data: str = ""
    # True when a completed earlier training of the same job provided the weights.
    reused_finished: bool = False
    # True when the run trained incrementally (newest span + replay) rather than on the window.
    incremental: bool = False


def incremental_plan(window: WindowManifest, options: IncrementalOptions,
                     batch_size: int, max_steps: int) -> Incremental | None:
    """The newest span, `replay_examples` spread evenly over the older spans (the first
    examples of each, so the read cost does not grow with the history), and enough steps for
    `epochs` passes over both; None when the window has a single span (nothing to replay)."""
    older = window.older
    if not older:
        return None
    quota = math.ceil(options.replay_examples / len(older)) if options.replay_examples else 0
    replay = tuple((entry.paths("train")[0], min(quota, entry.rows["train"]))
                   for entry in older if quota and entry.files["train"])
    examples = window.newest.rows["train"] + sum(count for _, count in replay)
    steps = min(steps_for(options.epochs, examples, batch_size, options.min_steps), max_steps)
    replayed = sum(count for _, count in replay)
    return Incremental(
        train_files=tuple(window.files("train", [window.newest])),
        eval_files=tuple(window.files("eval", [window.newest])),
        replay=replay, steps=steps,
        description=(f"span {window.newest.span} + {replayed} replayed examples of spans "
                     f"{older[0].span}-{older[-1].span}"))


@dataclasses.dataclass(frozen=True)
class _Start:
    model: keras.Model
    phases: list[Phase]
    origin: str
    incremental: bool
    # Why the run did not warm-start, when it did not.
    no_warm_start: str = ""

    @property
    def description(self) -> str:
        origin = "from scratch" if self.origin == "scratch" else self.origin
        return f"{origin}, since {self.no_warm_start}" if self.no_warm_start else origin


def _starting_point(train_files: Sequence[str], hparams: HParams, warm_start: WarmStartOptions,
                    transfer: TransferOptions | None, total_steps: int,
                    newest_files: Sequence[str], staleness: StalenessLimits,
                    incremental: Incremental | None) -> _Start:
    """Warm start when possible (and incremental data then), else transfer when configured,
    else from scratch on the full data."""
    new_data = None
    if newest_files:
        files, replay = ((incremental.train_files, incremental.replay) if incremental
                         else (train_files, ()))
        new_data = NewData(load_columns(newest_files), lambda: fit_feature_stats(
            load_columns(files, replay=replay), hparams))
    decision = try_warm_start(warm_start, hparams, new_data, staleness)
    if decision.model is not None:
        if transfer is not None:
            log.info("transfer settings unused: warm start from the served model takes precedence")
        steps = incremental.steps if incremental else total_steps
        return _Start(decision.model, [Phase("warm start", 0, steps, hparams.learning_rate)],
                      f"warm start from {warm_start.base_description}", incremental is not None)
    if incremental is not None:
        log.info("incremental training needs a model to continue: training on the full window")
    if transfer is not None:
        model, adopted = transferred_model(transfer, hparams)
        return _Start(model, transfer_phases(transfer, model, adopted, total_steps),
                      f"transfer ({transfer.strategy}) from {transfer.pretrained_model}", False,
                      decision.reason)
    stats = fit_feature_stats(load_columns(train_files), hparams)
    return _Start(build_model(stats, hparams),
                  [Phase("from scratch", 0, total_steps, hparams.learning_rate)], "scratch", False,
                  decision.reason)


def _segments(begin: int, end: int, steps_per_epoch: int) -> list[tuple[int, int, int]]:
    """(first step, steps per epoch, epochs) fit calls covering [begin, end) with epoch ends
    (validation) on multiples of steps_per_epoch, also when resuming mid-epoch."""
    segments, position = [], begin
    if position % steps_per_epoch and position < end:
        length = min(steps_per_epoch - position % steps_per_epoch, end - position)
        segments.append((position, length, 1))
        position += length
    full_epochs = (end - position) // steps_per_epoch
    if full_epochs:
        segments.append((position, steps_per_epoch, full_epochs))
        position += full_epochs * steps_per_epoch
    if position < end:
        segments.append((position, end - position, 1))
    return segments


def train(train_files: Sequence[str], eval_files: Sequence[str], *, train_steps: int,
          eval_steps: int, hparams: HParams, steps_per_epoch: int = 100, seed: int = 42,
          checkpoints: CheckpointOptions = CheckpointOptions(),
          warm_start: WarmStartOptions = WarmStartOptions(mode="off"),
          transfer: TransferOptions | None = None,
          newest_files: Sequence[str] = (), staleness: StalenessLimits = StalenessLimits(),
          incremental: Incremental | None = None,
          callbacks: Sequence[keras.callbacks.Callback] = (), model_run_dir: str = "",
          summary_every_steps: int = 10) -> TrainingResult:
    """Trains for `train_steps` batches (rounded up to whole epochs of `steps_per_epoch`).

    `newest_files` (the newest span's training files) let a stale warm-start base be noticed;
    `incremental` is the data and step count used instead when the run warm-starts. With a
    checkpoint root, resumes an unfinished run of the same job from its latest checkpoint, and
    reuses the weights of a finished one. With `model_run_dir` (TFX's ModelRun), TensorBoard
    logs go there (`ctpipe.models.tensorboard`: every `summary_every_steps` steps and each epoch end).
    """
    if train_steps <= 0:
        raise ValueError(f"train_steps must be positive, got {train_steps}")
    if checkpoints.export == "best" and not checkpoints.root:
        raise ValueError("exporting the best checkpoint needs a checkpoint root")
    keras.utils.set_random_seed(seed)
    start = _starting_point(train_files, hparams, warm_start, transfer,
                            _rounded(train_steps, steps_per_epoch), newest_files, staleness,
                            incremental)
    if start.incremental:
        train_files, eval_files = incremental.train_files, incremental.eval_files
        replay, train_steps, data = incremental.replay, incremental.steps, incremental.description
    else:
        replay, data = (), f"{len(train_files)} training file(s)"
    steps_per_epoch = min(max(steps_per_epoch, math.ceil(train_steps / MAX_VALIDATIONS)),
                          train_steps)
    total_steps = _rounded(train_steps, steps_per_epoch)
    model = start.model

    job, first_step = None, 0
    if checkpoints.root:
        job = JobCheckpoints(checkpoints, {
            "train_files": file_fingerprints(train_files), "replay": list(replay),
            "eval_files": file_fingerprints(eval_files),
            "train_steps": total_steps, "eval_steps": eval_steps,
            "steps_per_epoch": steps_per_epoch, "seed": seed,
            "hparams": hparams.model_dump(mode="json"), "origin": start.origin,
            "best_metric": checkpoints.best_metric, "code_version": models.code_version(),
        })
        finished = job.finished_step()
        if finished is not None:
            if model_run_dir:
                copy_events(posixpath.join(job.folder, JOB_EVENTS_FOLDER), model_run_dir)
            return _reuse_finished(job, start, finished, data)
        first_step = job.open()
        log.info("checkpoints every %d steps in %s", checkpoints.every_steps, job.folder)
    log.info("training %d steps as epochs of %d steps, batch size %d, from %s, on %s",
             total_steps, steps_per_epoch, hparams.batch_size, start.origin, data)
    progress.note(_start_note(start, first_step, total_steps, data))
    board = None
    if model_run_dir:
        board = TrainingBoard(posixpath.join(job.folder, JOB_EVENTS_FOLDER) if job
                              else model_run_dir, model_run_dir, first_step, summary_every_steps,
                              checkpoints.every_steps if job else None)
        board.start(model, {**hparams.model_dump(mode="json"), "train_steps": total_steps,
                            "steps_per_epoch": steps_per_epoch, "seed": seed,
                            "start": start.origin, "incremental": start.incremental,
                            "data": data}, trial_id=job.key if job else None)

    history: dict[str, list[float]] = defaultdict(list)
    phases = [dataclasses.replace(p, end=min(p.end, total_steps)) for p in start.phases]
    for phase in phases:
        if phase.end <= first_step or phase.begin >= phase.end:
            continue
        apply_phase(model, phase)
        begin = max(phase.begin, first_step)
        if job and first_step and begin == first_step:
            path = job.restore(model, first_step, with_optimizer=first_step > phase.begin)
            log.info("resuming from checkpoint step %d at %s", first_step, path)
        log.info("%s: steps %d to %d at learning rate %g", phase.name, begin, phase.end,
                 phase.learning_rate)
        for first, length, epochs in _segments(begin, phase.end, steps_per_epoch):
            # The board first: it flushes its events before a checkpoint is saved.
            fit_callbacks = (list(callbacks) + ([board.callback(first)] if board else [])
                             + ([CheckpointCallback(job, first)] if job else []))
            fitted = model.fit(
                make_dataset(train_files, hparams.batch_size, shuffle=True, repeat=True,
                             seed=seed, skip_batches=first, replay=replay),
                steps_per_epoch=length, epochs=epochs,
                validation_data=make_dataset(eval_files, hparams.batch_size, shuffle=False,
                                             repeat=True),
                validation_steps=eval_steps, callbacks=fit_callbacks, verbose=0,
            )
            for name, values in fitted.history.items():
                history[name].extend(values)
    if job and first_step >= total_steps:
        path = job.restore(model, first_step, with_optimizer=False)
        log.info("resuming from checkpoint step %d at %s: no steps left", first_step, path)

    if board:
        board.publish()
    exported_best = None
    if job:
        job.finish(model, total_steps)
        if checkpoints.export == "best":
            exported_best = job.restore_best(model)
            log.info("exporting the best checkpoint: %s %.4f at step %d", exported_best["metric"],
                     exported_best["value"], exported_best["step"])
    final = {name: round(values[-1], 4) for name, values in history.items()}
    log.info("trained %d steps (%d in this run): %s", total_steps, total_steps - first_step, final)
    return TrainingResult(model, dict(history), total_steps, start.origin, first_step,
                          exported_best, data, incremental=start.incremental)


def _rounded(steps: int, steps_per_epoch: int) -> int:
    per_epoch = min(steps_per_epoch, steps)
    return math.ceil(steps / per_epoch) * per_epoch


def _start_note(start: _Start, first_step: int, total_steps: int, data: str) -> str:
    if first_step:
        return (f"Trainer: resumed from checkpoint step {first_step} of {total_steps} "
                f"({start.description})")
    return f"Trainer: {start.description}, {total_steps} steps on {data}"


def _reuse_finished(job: JobCheckpoints, start: _Start, step: int, data: str) -> TrainingResult:
    restored = job.restore_finished(start.model)
    log.info("the training of this job finished earlier at step %d: reusing its %s weights "
             "(%s) instead of training again", step, job.options.export, restored["path"])
    progress.note(f"Trainer: reused the finished training of this job (step {step}, "
                  f"{job.options.export} weights) instead of training again")
    best = restored if job.options.export == "best" else None
    return TrainingResult(start.model, {}, step, start.origin, step, best, data,
                          reused_finished=True, incremental=start.incremental)

