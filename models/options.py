"""Typed Trainer settings: hyperparameters, checkpoints, warm start, transfer, training policy.

Pure Python on purpose: the pipeline configuration nests `TrainerOptions` and checks it when it
is constructed, without importing TensorFlow. The same object crosses into the TFX Trainer
through `to_custom_config` / `from_custom_config`, so the Trainer has no defaults of its own.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping

from pydantic import Field, model_validator

from ctpipe.common.settings import Settings

WarmStartMode = Literal["auto", "off", "required"]
TrainingPolicy = Literal["full", "incremental"]

# Key of the options in the Trainer's custom_config; `code_version` sits beside it.
CUSTOM_CONFIG_KEY = "trainer_options"
CODE_VERSION_KEY = "code_version"


class HParams(Settings):
    """Model and optimiser settings; part of the Trainer's cache key."""

    hidden_units: tuple[int, ...] = Field((64, 32), strict=False, min_length=1)
    embedding_dim: int = Field(8, gt=0)
    num_buckets: int = Field(12, ge=2)
    max_vocabulary: int = Field(100, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    batch_size: int = Field(128, gt=0)


class CheckpointOptions(Settings):
    """Where and how often training state is saved, and which weights are exported.

    `root` empty means no checkpoints: a killed training starts again from step 0. The pipeline
    configuration fills it with `<pipeline_root>/checkpoints` unless it is set.
    """

    root: str = ""
    every_steps: int = Field(100, gt=0)
    # Retention: the job folders (one per training job) with the newest activity are kept.
    keep_jobs: int = Field(3, ge=1)
    export: Literal["last", "best"] = "last"
    # A Keras validation metric; names containing "loss" are minimised, others maximised.
    best_metric: str = Field("val_auc", pattern=r"^val_")

    @property
    def minimise(self) -> bool:
        return "loss" in self.best_metric


class TransferOptions(Settings):
    """A pretrained model's trunk under a new head.

    feature_extraction: the trunk stays frozen for all steps. fine_tuning: the head trains alone
    for `head_steps`, then the top `fine_tune_layers` trunk layers train too, at
    `fine_tune_learning_rate`.
    """

    pretrained_model: str = Field(min_length=1)
    strategy: Literal["feature_extraction", "fine_tuning"] = "feature_extraction"
    fine_tune_layers: int = Field(1, ge=1)
    fine_tune_learning_rate: float = Field(3e-4, gt=0)
    # 0 means half of the training steps.
    head_steps: int = Field(0, ge=0)

    def head_steps_of(self, train_steps: int) -> int:
        return min(self.head_steps or train_steps // 2, train_steps)


class IncrementalOptions(Settings):
    """`training: incremental`: the newest span plus a replay sample of the older spans of the
    window, for a number of passes over that data (bounded by the configured train steps)."""

    # Older training examples mixed in, so the model does not forget the window.
    replay_examples: int = Field(2000, ge=0)
    epochs: float = Field(3.0, gt=0)
    # Below this many steps a warm start barely moves; also the floor for tiny spans.
    min_steps: int = Field(50, gt=0)


class StalenessLimits(Settings):
    """When a warm-start base's preprocessing no longer fits the newest span (chained warm
    starts keep the first model's vocabularies, buckets and normalisation)."""

    # Share of the newest span's values of a categorical feature that a vocabulary fitted now
    # would cover but the base model's vocabulary does not.
    max_vocabulary_gap: float = Field(0.05, ge=0, le=1)
    # Shift of a numeric feature's mean (after log1p) in the base model's standard deviations.
    max_normalisation_shift: float = Field(1.0, gt=0)


class TrainerOptions(Settings):
    """Everything the Trainer's run_fn needs beyond TFX's train/eval steps and files."""

    hparams: HParams = HParams()
    # A full training makes this many passes over the window's training examples, or the
    # pipeline's train_steps, whichever is more: the budget follows the data.
    epochs: float = Field(1.0, gt=0)
    # Validation and checkpoint cadence; raised so a long training validates at most
    # ctpipe.models.training.MAX_VALIDATIONS times.
    steps_per_epoch: int = Field(100, gt=0)
    seed: int = 42
    # TensorBoard: training scalars every this many steps (validation: at each epoch end).
    summary_every_steps: int = Field(10, gt=0)
    checkpoints: CheckpointOptions = CheckpointOptions()
    # Start from the served model: auto (fall back to scratch, logged) | off | required.
    warm_start: WarmStartMode = "auto"
    transfer: TransferOptions | None = None
    # full: train on every span of the window; incremental: warm start on the newest span plus
    # a replay sample (falls back to full when there is no model to start from).
    training: TrainingPolicy = "full"
    incremental: IncrementalOptions = IncrementalOptions()
    staleness: StalenessLimits = StalenessLimits()

    @model_validator(mode="after")
    def _incremental_needs_warm_start(self) -> "TrainerOptions":
        if self.training == "incremental" and self.warm_start == "off":
            raise ValueError("training 'incremental' continues the served model: it needs "
                             "warm_start 'auto' or 'required', not 'off'")
        return self


@dataclasses.dataclass(frozen=True)
class WarmStartOptions:
    """The warm-start mode and the base model a run was handed (None: no served model)."""

    mode: WarmStartMode = "auto"
    base_model: str | None = None
    # How to name the base to the user (e.g. "served version 1732371234"); default: its path.
    base_name: str | None = None

    @property
    def base_description(self) -> str:
        return self.base_name or str(self.base_model)


def to_custom_config(options: TrainerOptions, code_version: str) -> dict[str, Any]:
    """The Trainer's custom_config: the options as JSON values and the model code's version
    (which puts model-code edits into the Trainer's cache key)."""
    return {CUSTOM_CONFIG_KEY: options.model_dump(mode="json"), CODE_VERSION_KEY: code_version}


def from_custom_config(custom_config: Mapping[str, Any]) -> TrainerOptions:
    """The options `to_custom_config` wrote; a missing key is a wiring error, not a default."""
    if CUSTOM_CONFIG_KEY not in custom_config:
        raise ValueError(f"the Trainer's custom_config has no '{CUSTOM_CONFIG_KEY}': the "
                         "pipeline must pass ctpipe.models.options.to_custom_config(...)")
    return TrainerOptions.model_validate(custom_config[CUSTOM_CONFIG_KEY], strict=False)
