"""Training as a pure function of files and settings; no TFX here."""
from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from typing import Any, Sequence

import keras

import models
from models.checkpoints import CheckpointCallback, JobCheckpoints, file_fingerprints
from models.inputs import load_columns, make_dataset
from models.model import HParams, Phase, apply_phase, build_model, fit_feature_stats
from models.options import CheckpointOptions, TransferOptions, WarmStartOptions
from models.transfer import transfer_phases, transferred_model
from models.warm_start import try_warm_start

log = logging.getLogger(__name__)


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


@dataclasses.dataclass(frozen=True)
class _Start:
    model: keras.Model
    phases: list[Phase]
    origin: str


def _starting_point(train_files: Sequence[str], hparams: HParams, warm_start: WarmStartOptions,
                    transfer: TransferOptions | None, total_steps: int) -> _Start:
    """Warm start when possible, else transfer when configured, else from scratch."""
    model = try_warm_start(warm_start, hparams)
    if model is not None:
        if transfer is not None:
            log.info("transfer settings unused: warm start from the blessed model takes precedence")
        return _Start(model, [Phase("warm start", 0, total_steps, hparams.learning_rate)],
                      f"warm start from {warm_start.base_model}")
    if transfer is not None:
        model, adopted = transferred_model(transfer, hparams)
        return _Start(model, transfer_phases(transfer, model, adopted, total_steps),
                      f"transfer ({transfer.strategy}) from {transfer.pretrained_model}")
    stats = fit_feature_stats(load_columns(train_files), hparams)
    return _Start(build_model(stats, hparams),
                  [Phase("from scratch", 0, total_steps, hparams.learning_rate)], "scratch")


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
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainingResult:
    """Trains for `train_steps` batches (rounded up to whole epochs of `steps_per_epoch`).

    With a checkpoint root, resumes an unfinished run of the same job from its latest checkpoint.
    """
    if train_steps <= 0:
        raise ValueError(f"train_steps must be positive, got {train_steps}")
    keras.utils.set_random_seed(seed)
    steps_per_epoch = min(steps_per_epoch, train_steps)
    total_steps = math.ceil(train_steps / steps_per_epoch) * steps_per_epoch
    start = _starting_point(train_files, hparams, warm_start, transfer, total_steps)
    model = start.model

    job, first_step = None, 0
    if checkpoints.root:
        job = JobCheckpoints(checkpoints, {
            "train_files": file_fingerprints(train_files),
            "eval_files": file_fingerprints(eval_files),
            "train_steps": total_steps, "eval_steps": eval_steps,
            "steps_per_epoch": steps_per_epoch, "seed": seed,
            "hparams": dataclasses.asdict(hparams), "origin": start.origin,
            "best_metric": checkpoints.best_metric, "code_version": models.code_version(),
        })
        first_step = job.open()
        log.info("checkpoints every %d steps in %s", checkpoints.every_steps, job.folder)
    log.info("training %d steps as epochs of %d steps, batch size %d, from %s",
             total_steps, steps_per_epoch, hparams.batch_size, start.origin)

    history: dict[str, list[float]] = defaultdict(list)
    for phase in start.phases:
        if phase.end <= first_step or phase.begin == phase.end:
            continue
        apply_phase(model, phase)
        begin = max(phase.begin, first_step)
        if job and first_step and begin == first_step:
            path = job.restore(model, first_step, with_optimizer=first_step > phase.begin)
            log.info("resuming from checkpoint step %d at %s", first_step, path)
        log.info("%s: steps %d to %d at learning rate %g", phase.name, begin, phase.end,
                 phase.learning_rate)
        for first, length, epochs in _segments(begin, phase.end, steps_per_epoch):
            fit_callbacks = list(callbacks) + ([CheckpointCallback(job, first)] if job else [])
            fitted = model.fit(
                make_dataset(train_files, hparams.batch_size, shuffle=True, repeat=True,
                             seed=seed, skip_batches=first),
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

    exported_best = None
    if job:
        job.finish(total_steps)
        if checkpoints.export == "best":
            exported_best = job.restore_best(model)
            log.info("exporting the best checkpoint: %s %.4f at step %d", exported_best["metric"],
                     exported_best["value"], exported_best["step"])
    final = {name: round(values[-1], 4) for name, values in history.items()}
    log.info("trained %d steps (%d in this run): %s", total_steps, total_steps - first_step, final)
    return TrainingResult(model, dict(history), total_steps, start.origin, first_step,
                          exported_best)
