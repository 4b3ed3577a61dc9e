"""Runs the pipeline in this process with TFX's LocalDagRunner, on a local workspace.

The workspace holds `pipeline_root/`, `metadata.sqlite` (ML Metadata) and `serving/`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from absl import logging as absl_logging
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from ctpipe.common import progress, storage
from ctpipe.common.errors import UserError
from ctpipe.common.metadata import METADATA_FILE, open_store
from ctpipe.components.example_gen.component import input_config
from ctpipe.components.example_gen.executor import SpanNotFound, resolve_span
from ctpipe.pipeline.config import PipelineConfig
from ctpipe.pipeline.pipeline import create_pipeline
from ctpipe.serving.client.version_labels import labels_of
from ctpipe.tracking import outbox
from ctpipe.tracking.from_run import build_record
from ctpipe.tracking.options import workspace_outbox

log = logging.getLogger(__name__)


def metadata_path(workspace: str | Path) -> Path:
    return Path(workspace).resolve() / METADATA_FILE


class RunFailed(UserError):
    """A component failed; `component` names it and the message says why."""

    def __init__(self, component: str, cause: BaseException):
        self.component = component
        self.cause = cause
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        super().__init__(f"run failed: {component} failed: {type(cause).__name__}: {reason}")


@dataclasses.dataclass
class ComponentEvent:
    component: str
    state: str  # "running" | "cached" | "executed" | "failed" | "note"
    seconds: float = 0.0
    # For "note": what the step told the user (ctpipe.common.progress).
    message: str = ""


def format_event(event: ComponentEvent) -> str:
    """How `ctpipe run` shows an event: a line per step, the steps' notes indented below."""
    if event.state == "running":
        return f"  ▸ {event.component} ..."
    if event.state == "note":
        return f"      {event.message}"
    mark = "✗" if event.state == "failed" else "✓"
    return f"  {mark} {event.component}: {event.state} ({event.seconds:.1f} s)"


class _ProgressWatcher(logging.Handler):
    """Follows LocalDagRunner's and the launcher's log records to report each component.

    TFX 1.16's LocalDagRunner has no callbacks; it logs 'Component %s is running.' and
    '... is finished.', and the launcher logs whether a cached execution was used.
    """

    def __init__(self, report: Callable[[ComponentEvent], None]):
        super().__init__(logging.INFO)
        self.report = report
        self.current: str | None = None
        self._cached = False
        self._started = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == progress.LOGGER_NAME:
            self.report(ComponentEvent(self.current or "pipeline", "note",
                                       message=record.getMessage()))
            return
        message = record.msg if isinstance(record.msg, str) else ""
        if message == "Component %s is running.":
            self.current, self._cached, self._started = record.args[0], False, time.monotonic()
            self.report(ComponentEvent(self.current, "running"))
        elif message.startswith("A cached execution") and self.current:
            self._cached = True
        elif message == "Component %s is finished." and self.current:
            state = "cached" if self._cached else "executed"
            self.report(ComponentEvent(self.current, state, time.monotonic() - self._started))
            self.current = None


@contextlib.contextmanager
def _arguments_hidden_from_tfx() -> Iterator[None]:
    """TFX's Beam executors parse the process's arguments as absl flags (base_beam_executor:
    `flags.FLAGS(sys.argv + beam_args)`, a TODO of TFX's), so `ctpipe -v run ...` would read
    as `--verbosity=run`. While the pipeline runs they see the program name only."""
    arguments = sys.argv
    sys.argv = arguments[:1]
    try:
        yield
    finally:
        sys.argv = arguments


@dataclasses.dataclass(frozen=True)
class SpanChoice:
    """The span a local run ingests, and whether a completed run already trained on it."""

    span: int
    fingerprint: str
    already_trained_by: str | None  # the pipeline run that did, if any


def _metadata(workspace: str | Path) -> tuple[Any, dict[int, str]] | None:
    """The workspace's ML Metadata store, read-only, and the step of every execution; None
    before the first run."""
    if not metadata_path(workspace).is_file():
        return None
    store = open_store(Path(workspace).resolve())
    return store, {execution.id: context.name.split(".", 1)[-1]
                   for context in store.get_contexts_by_type("node")
                   for execution in store.get_executions_by_context(context.id)}


def last_completed_ingestion(workspace: str | Path) -> tuple[int, str, str] | None:
    """(span, input fingerprint, run id) of the newest run whose Pusher finished, from the
    workspace's ML Metadata."""
    found = _metadata(workspace)
    if found is None:
        return None
    store, node_of = found
    done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    for run in sorted(store.get_contexts_by_type("pipeline_run"),
                      key=lambda c: (c.create_time_since_epoch, c.id), reverse=True):
        executions = {node_of.get(e.id): e for e in store.get_executions_by_context(run.id)}
        pusher, example_gen = executions.get("Pusher"), executions.get("ExampleGen")
        if not (pusher and example_gen and pusher.last_known_state in done):
            continue
        outputs = [e.artifact_id for e in store.get_events_by_execution_ids([example_gen.id])
                   if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id(outputs):
            return (artifact.custom_properties["span"].int_value,
                    artifact.custom_properties["input_fingerprint"].string_value, run.name)
    return None


def latest_run_outputs(workspace: str | Path) -> tuple[str, dict[tuple[str, str], Any]]:
    """The newest run's id and its steps' output artifacts by (step, output key) (a cached
    step's are those an earlier run made: ML Metadata links them to the cached execution)."""
    store, node_of = _metadata(workspace)
    run = max(store.get_contexts_by_type("pipeline_run"),
              key=lambda c: (c.create_time_since_epoch, c.id))
    executions = store.get_executions_by_context(run.id)
    events = [e for e in store.get_events_by_execution_ids([e.id for e in executions])
              if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    return run.name, {(node_of.get(e.execution_id, ""), e.path.steps[0].key):
                      artifacts[e.artifact_id] for e in events}


def choose_span(config: PipelineConfig, workspace: str | Path) -> SpanChoice:
    """The span `config` asks for (0: the newest in the data folder), resolved as ExampleGen
    will, and the run that already trained on exactly those files, if one did."""
    try:
        span, fingerprint = resolve_span(config.data_root, input_config(config.data_format),
                                         config.span)
    except SpanNotFound as err:
        raise UserError(str(err)) from None
    previous = last_completed_ingestion(workspace)
    trained_by = previous[2] if previous and previous[:2] == (span, fingerprint) else None
    return SpanChoice(span, fingerprint, trained_by)


def run_local(config: PipelineConfig, workspace: str | Path,
              report: Callable[[ComponentEvent], None] = lambda event: None,
              ) -> list[ComponentEvent]:
    """Runs every component; raises RunFailed naming the component that failed."""
    storage.register_filesystems(config.opened_locations().values())
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(
        str(metadata_path(workspace)))
    pipeline = create_pipeline(config, metadata_connection_config=connection)
    events: list[ComponentEvent] = []

    def record(event: ComponentEvent) -> None:
        if event.state != "running":
            events.append(event)
        report(event)

    watcher = _ProgressWatcher(record)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(watcher)
    progress_logger = logging.getLogger(progress.LOGGER_NAME)
    progress_logger.addHandler(watcher)
    progress_logger.setLevel(logging.INFO)
    # Through absl's flag, not the logger: TensorFlow's SavedModel code resets the level from
    # the flag, which would silence the records the watcher follows.
    previous_verbosity = absl_logging.get_verbosity()
    # absl: a higher verbosity is more verbose.
    absl_logging.set_verbosity(max(previous_verbosity, absl_logging.INFO))
    started = time.time()
    try:
        with _arguments_hidden_from_tfx():
            LocalDagRunner().run(pipeline)
    except Exception as err:
        component = watcher.current or "pipeline"
        record(ComponentEvent(component, "failed", time.monotonic() - watcher._started))
        failure = RunFailed(component, err)
    else:
        failure = None
    finally:
        absl_logger.removeHandler(watcher)
        progress_logger.removeHandler(watcher)
        absl_logging.set_verbosity(previous_verbosity)
    if config.tracking is not None:
        _track(config, workspace, events, started, record, failure)
    if failure is not None:
        raise failure from failure.cause
    return events


def _track(config: PipelineConfig, workspace: Path, events: list[ComponentEvent],
           started: float, record: Callable[[ComponentEvent], None],
           failure: RunFailed | None) -> None:
    """Logs the run in MLflow, built from the workspace's ML Metadata (ctpipe.tracking.record), failed
    and cached runs too; the tracking server's refusal of a record then does not hide why the
    run failed."""
    run_id, outputs = latest_run_outputs(workspace)
    steps = [e for e in events if e.state in ("executed", "cached", "failed")]
    trainer = [e.message for e in events if e.state == "note" and e.component == "Trainer"]
    run = build_record(
        pipeline_name=config.pipeline_name, pipeline_run_id=run_id,
        experiment=config.tracking.experiment or config.pipeline_name,
        run_name=run_id, failed=failure is not None, start_ms=int(started * 1000),
        end_ms=int(time.time() * 1000), config=config.model_dump(mode="json"),
        outputs=outputs, model_name=config.model_name,
        step_seconds={e.component: round(e.seconds, 3) for e in steps},
        step_states={e.component: e.state for e in steps},
        notes={"Trainer": trainer[0]} if trainer else {},
        labels=(labels_of(config.serving_model_config, config.model_name)
                if config.serving_model_config else None))
    try:
        lines = outbox.send(workspace_outbox(workspace), {
            "kind": outbox.RUN, "tracking_uri": config.tracking_uri(workspace),
            "artifact_location": config.tracking_artifacts(workspace),
            "record": run.to_json()}, config.tracking.timeout_seconds)
    except outbox.TrackingRefused as refused:
        if failure is None:
            raise
        lines = [str(refused)]
    for line in lines:
        record(ComponentEvent("Tracking", "note", message=f"Tracking: {line}"))
