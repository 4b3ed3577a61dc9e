"""The MLflow record of a local run (`ctpipe run`), built from the workspace's ML Metadata
right after LocalDagRunner ends, whether the run succeeded or failed, executed or was cached."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from ctpipe.status import WorkspaceStatus
from pipeline.config import PipelineConfig
from tracking import outbox
from tracking.options import OUTBOX_FOLDER
from tracking.record import build_record

STEP_STATES = ("executed", "cached", "failed")


def outbox_of(workspace: str | Path) -> Path:
    return Path(workspace).resolve() / OUTBOX_FOLDER


def model_labels(model_config: str, model_name: str) -> dict[str, int] | None:
    """TF Serving's labels of the model in its config file (None: no file is kept)."""
    if not model_config:
        return None
    from serving.client import version_labels

    entry = version_labels.model_entry(version_labels.read_config(Path(model_config)), model_name)
    return dict(entry.version_labels)


def track_run(config: PipelineConfig, workspace: str | Path, events: Sequence,
              started: float) -> list[str]:
    """Logs the workspace's latest run (the one that just ended); returns what to tell the
    user. `events` are the run's step events (pipeline.local_runner.ComponentEvent)."""
    status = WorkspaceStatus(Path(workspace))
    (run,) = status.runs(1)
    steps = [e for e in events if e.state in STEP_STATES]
    trainer_notes = [e.message for e in events
                     if e.state == "note" and e.component == "Trainer"]
    record = build_record(
        pipeline_name=config.pipeline_name, pipeline_run_id=run.run_id,
        experiment=config.tracking.experiment or config.pipeline_name,
        run_name=f"{run.run_id} spans {run.spans}", failed=run.state == "failed",
        start_ms=int(started * 1000), end_ms=int(time.time() * 1000),
        config=config.model_dump(mode="json"), outputs=status.run_outputs(run.context_id),
        model_name=config.model_name,
        step_seconds={e.component: round(e.seconds, 3) for e in steps},
        step_states={e.component: e.state for e in steps},
        notes={"Trainer": trainer_notes[0]} if trainer_notes else {},
        labels=model_labels(config.serving_model_config, config.model_name))
    return outbox.send(outbox_of(workspace), {
        "kind": outbox.RUN, "tracking_uri": config.tracking_uri(workspace),
        "artifact_location": config.tracking_artifacts(workspace), "record": record.to_json()},
        config.tracking.timeout_seconds)
