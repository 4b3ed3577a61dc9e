"""Trainer options beyond the hyperparameters: checkpoints, warm start and transfer learning.

Pure Python on purpose: the pipeline configuration validates these without importing TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping

WarmStartMode = Literal["auto", "off", "required"]
WARM_START_MODES: tuple[str, ...] = ("auto", "off", "required")
ExportChoice = Literal["last", "best"]
EXPORT_CHOICES: tuple[str, ...] = ("last", "best")
TransferStrategy = Literal["feature_extraction", "fine_tuning"]
TRANSFER_STRATEGIES: tuple[str, ...] = ("feature_extraction", "fine_tuning")


def _from_mapping(cls, values: Mapping[str, Any], what: str):
    """Builds a dataclass from a mapping, naming unknown keys instead of a TypeError."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return cls(**dict(values))


@dataclasses.dataclass(frozen=True)
class CheckpointOptions:
    """Where and how often training state is saved, and which weights are exported.

    `root` empty means no checkpoints: a killed training starts again from step 0.
    """

    root: str = ""
    every_steps: int = 100
    # Retention: the job folders (one per training job) with the newest activity are kept.
    keep_jobs: int = 3
    export: ExportChoice = "last"
    # A Keras validation metric; names containing "loss" are minimised, others maximised.
    best_metric: str = "val_auc"

    def __post_init__(self) -> None:
        if self.every_steps <= 0:
            raise ValueError(f"checkpoint every_steps must be positive, got {self.every_steps}")
        if self.keep_jobs < 1:
            raise ValueError(f"checkpoint keep_jobs must be >= 1, got {self.keep_jobs}")
        if self.export not in EXPORT_CHOICES:
            raise ValueError(f"checkpoint export must be one of {EXPORT_CHOICES}, "
                             f"got {self.export!r}")
        if self.export == "best" and not self.root:
            raise ValueError("exporting the best checkpoint needs a checkpoint root")
        if not self.best_metric.startswith("val_"):
            raise ValueError(f"best_metric must be a validation metric (val_...), "
                             f"got {self.best_metric!r}")

    @property
    def minimise(self) -> bool:
        return "loss" in self.best_metric


@dataclasses.dataclass(frozen=True)
class TransferOptions:
    """A pretrained model's trunk under a new head.

    feature_extraction: the trunk stays frozen for all steps. fine_tuning: the head trains alone
    for `head_steps`, then the top `fine_tune_layers` trunk layers train too, at
    `fine_tune_learning_rate`.
    """

    pretrained_model: str = ""
    strategy: TransferStrategy = "feature_extraction"
    fine_tune_layers: int = 1
    fine_tune_learning_rate: float = 3e-4
    # 0 means half of the training steps.
    head_steps: int = 0

    def __post_init__(self) -> None:
        if not self.pretrained_model:
            raise ValueError("transfer needs 'pretrained_model' (a .keras file or SavedModel)")
        if self.strategy not in TRANSFER_STRATEGIES:
            raise ValueError(f"transfer strategy must be one of {TRANSFER_STRATEGIES}, "
                             f"got {self.strategy!r}")
        if self.fine_tune_layers < 1:
            raise ValueError(f"transfer fine_tune_layers must be >= 1, got {self.fine_tune_layers}")
        if not self.fine_tune_learning_rate > 0:
            raise ValueError("transfer fine_tune_learning_rate must be positive")
        if self.head_steps < 0:
            raise ValueError(f"transfer head_steps must be >= 0, got {self.head_steps}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TransferOptions | None":
        """None for an empty mapping (no transfer)."""
        return _from_mapping(cls, values, "transfer") if values else None

    def head_steps_of(self, train_steps: int) -> int:
        return min(self.head_steps or train_steps // 2, train_steps)


@dataclasses.dataclass(frozen=True)
class WarmStartOptions:
    """Start from a previous model's weights: `base_model` is its exported SavedModel."""

    mode: WarmStartMode = "auto"
    base_model: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in WARM_START_MODES:
            raise ValueError(f"warm_start must be one of {WARM_START_MODES}, got {self.mode!r}")


def checkpoint_options_from_dict(values: Mapping[str, Any]) -> CheckpointOptions:
    return _from_mapping(CheckpointOptions, values, "checkpoint")
