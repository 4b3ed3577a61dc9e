"""What one pipeline run leaves for MLflow: the record, plain JSON-able data, so that a
record the tracking server did not take can wait in the outbox and be sent later exactly as it
was (`tracking.outbox`). It is built from the run's outputs by `tracking.from_run`; no mlflow
here, and nothing heavier than the standard library.
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Mapping

# MLflow accepts these characters in metric and parameter names.
_NAME_CHARACTERS = re.compile(r"[^/\w.\- :]")


@dataclasses.dataclass
class ModelToRegister:
    """A pushed version, registered in MLflow's model registry under the served model's name."""

    name: str
    serving_version: int
    destination: str  # the version folder TF Serving reads
    saved_model_dir: str  # the Trainer's SavedModel the Pusher copied; logged with the run


@dataclasses.dataclass
class RunRecord:
    record_id: str  # one MLflow run per record id: a record sent twice is logged once
    experiment: str
    run_name: str
    status: str  # MLflow's FINISHED | FAILED
    start_ms: int
    end_ms: int
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    model: ModelToRegister | None = None
    # TF Serving's labels of the model once the run ended (without a model config file TF
    # Serving serves the newest version, the pushed one: it counts as `stable`).
    labels: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> "RunRecord":
        values = dict(values)
        model = values.pop("model")
        return cls(**values, model=ModelToRegister(**model) if model else None)


def metric_name(*parts: str) -> str:
    return _NAME_CHARACTERS.sub("_", "/".join(parts))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted parameter names with JSON values ("trainer.hparams.learning_rate")."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat
