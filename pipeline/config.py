"""The one typed configuration of the pipeline: defaults here, overrides from a file or flags.

Physical locations (pipeline root, data root, serving destination) and the Beam arguments live
here, never in the pipeline factory, so the same factory serves the local and Kubeflow runners.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from ctpipe.errors import UserError
from models.options import CheckpointOptions, TransferOptions, WarmStartOptions

DEFAULT_SCHEMA = str(Path(__file__).resolve().parent.parent / "schemas" / "schema.pbtxt")

# Local Beam defaults: in-process, in-memory, one worker (the data is small; processes would
# only add start-up time on two cores).
LOCAL_BEAM_ARGS: tuple[str, ...] = (
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
)


class ConfigError(UserError, ValueError):
    """A configuration value or file is wrong; the message names the setting."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str = "taxi-big-tipper"
    # Name of the model under the serving base path, as TF Serving's --model_name.
    model_name: str = "big_tipper"
    pipeline_root: str = ""
    data_root: str = ""
    # Push destination: versions are written to `<serving_root>/<model_name>/<version>/`.
    serving_root: str = ""
    # Curated schema; empty means bootstrap a schema with SchemaGen instead.
    schema_path: str = DEFAULT_SCHEMA
    # Rolling window: train on the latest `window` spans; 0 means every span available.
    window: int = 0
    train_steps: int = 600
    eval_steps: int = 50
    steps_per_epoch: int = 100
    seed: int = 42
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Evaluator: the candidate must reach min_auc and lose at most max_auc_regression
    # against the latest blessed model.
    min_auc: float = 0.7
    max_auc_regression: float = 0.01
    # Evaluate against the latest blessed model other than the candidate, so that a re-run on
    # unchanged inputs is fully cached (components/baseline.py). KFP v2 supports only TFX's
    # LatestBlessedModelStrategy, so the Kubeflow runner turns this off.
    # It also makes the warm-start resolver leave out models trained on the current examples,
    # for the same reason (components/baseline.py).
    baseline_excludes_candidate: bool = True
    # Trainer checkpoints (models/checkpoints.py); empty root: `<pipeline_root>/checkpoints`.
    checkpoint_root: str = ""
    checkpoint_every_steps: int = 100
    checkpoint_keep_jobs: int = 3
    # Export the "last" weights or the "best" checkpoint by `best_metric` (a Keras val_ metric).
    export_checkpoint: str = "last"
    best_metric: str = "val_auc"
    # Start from the latest blessed model: auto (fall back to scratch, logged) | off | required.
    warm_start: str = "auto"
    # Transfer learning (models/options.py TransferOptions): pretrained_model, strategy,
    # fine_tune_layers, fine_tune_learning_rate, head_steps. Empty: off.
    transfer: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    enable_cache: bool = True
    # Beam arguments of every Beam-based component (README: Dataflow, Flink, Spark on a cluster).
    beam_args: tuple[str, ...] = LOCAL_BEAM_ARGS
    # Container limits of the Trainer where components run in containers (Kubeflow);
    # 0 leaves the cluster's default. Local runs share this machine and ignore them.
    trainer_cpu_limit: float = 0.0
    trainer_memory_limit_gib: float = 0.0

    @property
    def serving_model_dir(self) -> str:
        return str(Path(self.serving_root) / self.model_name) if self.serving_root else ""

    def checkpoint_options(self) -> CheckpointOptions:
        """Kept under the pipeline root by default: it outlives every Trainer execution."""
        root = self.checkpoint_root or (
            f"{self.pipeline_root.rstrip('/')}/checkpoints" if self.pipeline_root else "")
        return CheckpointOptions(root=root, every_steps=self.checkpoint_every_steps,
                                 keep_jobs=self.checkpoint_keep_jobs,
                                 export=self.export_checkpoint,  # type: ignore[arg-type]
                                 best_metric=self.best_metric)

    def validate(self, *, check_files: bool = True) -> "PipelineConfig":
        """Checks values that would otherwise fail deep inside a component. `check_files`:
        also that local files exist (not when they are paths inside a container image)."""
        for name in ("pipeline_root", "data_root", "serving_root"):
            if not getattr(self, name):
                raise ConfigError(f"config: '{name}' must be set")
        if self.window < 0:
            raise ConfigError(f"config: 'window' must be >= 0 (0 = all spans), got {self.window}")
        for name in ("train_steps", "eval_steps", "steps_per_epoch"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"config: '{name}' must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.min_auc <= 1.0:
            raise ConfigError(f"config: 'min_auc' must be within [0, 1], got {self.min_auc}")
        for name in ("trainer_cpu_limit", "trainer_memory_limit_gib"):
            if getattr(self, name) < 0:
                raise ConfigError(f"config: '{name}' must be >= 0, got {getattr(self, name)}")
        if self.max_auc_regression < 0:
            raise ConfigError("config: 'max_auc_regression' must be >= 0")
        if check_files and self.schema_path and not Path(self.schema_path).is_file():
            raise ConfigError(f"config: schema file not found: {self.schema_path}")
        try:
            self.checkpoint_options()
            WarmStartOptions(mode=self.warm_start)  # type: ignore[arg-type]
            TransferOptions.from_dict(self.transfer)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"config: {err}") from None
        if not self.model_name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"config: 'model_name' must be alphanumeric/_/-: {self.model_name!r}")
        return self

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with the given settings changed; unset (None) values are ignored."""
        return with_overrides(self, {k: v for k, v in changes.items() if v is not None})


def _coerce(name: str, expected: Any, value: Any) -> Any:
    """Checks a value from a file against the field's type; converts lists to tuples."""
    origin = typing.get_origin(expected)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif expected is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # Mapping
        ok = isinstance(value, Mapping)
    if not ok:
        raise ConfigError(f"config: '{name}' expects {getattr(expected, '__name__', expected)}, "
                          f"got {value!r}")
    return value


def with_overrides(base: PipelineConfig, overrides: Mapping[str, Any]) -> PipelineConfig:
    hints = typing.get_type_hints(PipelineConfig)
    unknown = sorted(set(overrides) - set(hints))
    if unknown:
        raise ConfigError(f"config: unknown setting(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(hints))}")
    typed = {name: _coerce(name, hints[name], value) for name, value in overrides.items()}
    return dataclasses.replace(base, **typed)


def load_config(path: str | Path | None, base: PipelineConfig | None = None) -> PipelineConfig:
    """Reads a YAML or JSON file of settings on top of `base` (defaults if omitted)."""
    base = base or PipelineConfig()
    if path is None:
        return base
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not valid: {err}") from None
    if values is None:
        return base
    if not isinstance(values, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return with_overrides(base, values)


def local_config(workspace: str | Path, data_root: str | Path,
                 base: PipelineConfig | None = None) -> PipelineConfig:
    """Places the pipeline root and serving folder inside a local workspace."""
    workspace = Path(workspace).resolve()
    return dataclasses.replace(
        base or PipelineConfig(),
        pipeline_root=str(workspace / "pipeline_root"),
        data_root=str(Path(data_root).resolve()),
        serving_root=str(workspace / "serving"),
    )
