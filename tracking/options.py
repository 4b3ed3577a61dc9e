"""The `tracking:` setting of the pipeline configuration; pure Python (no mlflow import)."""
from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from ctpipe.common.settings import Settings

# The embedded store of a local workspace when tracking is on without a URI, and where the
# artifacts of its runs (the registered SavedModels) go.
EMBEDDED_STORE_FILE = "mlflow.sqlite"
EMBEDDED_ARTIFACTS_FOLDER = "mlartifacts"
# Records the tracking server did not take, kept until it is back (`ctpipe track sync`).
OUTBOX_FOLDER = "tracking-outbox"


def workspace_outbox(workspace: str | Path) -> Path:
    """Where a local workspace keeps the records its tracking server missed."""
    return Path(workspace).resolve() / OUTBOX_FOLDER


class TrackingOptions(Settings):
    """Where each pipeline run is logged. In a config file: `tracking: true` (the embedded
    store of the workspace), `tracking: http://mlflow:5000`, or a mapping of these fields.
    Credentials never go here: MLflow reads MLFLOW_TRACKING_TOKEN (or _USERNAME/_PASSWORD)
    from the environment when it connects."""

    # An MLflow tracking URI (http(s)://, sqlite:///, postgresql://, databricks, ...); empty:
    # sqlite:///<workspace>/mlflow.sqlite for local runs.
    uri: str = ""
    # The MLflow experiment; empty: the pipeline's name.
    experiment: str = ""
    # How long a tracking server may take to answer its health check before it is reported
    # unreachable and the run's record goes to the outbox.
    timeout_seconds: float = Field(5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is True:
            return {}
        if isinstance(value, str):
            return {"uri": value}
        return value

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, uri: str) -> str:
        parts = urllib.parse.urlsplit(uri)
        if parts.username or parts.password:
            raise ValueError("must not hold credentials: set MLFLOW_TRACKING_USERNAME and "
                             "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the "
                             "environment of the process that logs")
        return uri
