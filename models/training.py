"""Training as a pure function of files and settings; no TFX here."""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Sequence

import keras

from models.inputs import load_columns, make_dataset
from models.model import HParams, build_model, fit_feature_stats

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    model: keras.Model
    history: dict[str, list[float]]
    steps: int


def train(train_files: Sequence[str], eval_files: Sequence[str], *, train_steps: int,
          eval_steps: int, hparams: HParams, steps_per_epoch: int = 100,
          seed: int = 42) -> TrainingResult:
    """Fits preprocessing on the training files, then trains for `train_steps` batches."""
    if train_steps <= 0:
        raise ValueError(f"train_steps must be positive, got {train_steps}")
    keras.utils.set_random_seed(seed)
    stats = fit_feature_stats(load_columns(train_files), hparams)
    model = build_model(stats, hparams)
    steps_per_epoch = min(steps_per_epoch, train_steps)
    epochs = math.ceil(train_steps / steps_per_epoch)
    log.info("training %d steps as %d epochs of %d steps, batch size %d",
             epochs * steps_per_epoch, epochs, steps_per_epoch, hparams.batch_size)
    history = model.fit(
        make_dataset(train_files, hparams.batch_size, shuffle=True, repeat=True, seed=seed),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=make_dataset(eval_files, hparams.batch_size, shuffle=False, repeat=True),
        validation_steps=eval_steps,
        verbose=0,
    )
    final = {name: round(values[-1], 4) for name, values in history.history.items()}
    log.info("trained %d steps: %s", epochs * steps_per_epoch, final)
    return TrainingResult(model, dict(history.history), epochs * steps_per_epoch)
