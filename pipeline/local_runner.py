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
from typing import Callable, Iterator

from absl import logging as absl_logging

from ctpipe import progress
from ctpipe.errors import UserError
from pipeline import storage
from pipeline.config import PipelineConfig

METADATA_FILE = "metadata.sqlite"

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
    # For "note": what the step told the user (ctpipe.progress).
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


def run_local(config: PipelineConfig, workspace: str | Path,
              report: Callable[[ComponentEvent], None] = lambda event: None,
              ) -> list[ComponentEvent]:
    """Runs every component; raises RunFailed naming the component that failed."""
    # Heavy: imported only when a run is asked for.
    from tfx.orchestration import metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.pipeline import create_pipeline

    # Every location of the settings (the cluster-only ones aside), nested ones included.
    storage.register_filesystems(storage.locations_in(config.model_dump(exclude={"kubernetes"})))
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
    try:
        with _arguments_hidden_from_tfx():
            LocalDagRunner().run(pipeline)
    except Exception as err:
        component = watcher.current or "pipeline"
        record(ComponentEvent(component, "failed", time.monotonic() - watcher._started))
        raise RunFailed(component, err) from err
    finally:
        absl_logger.removeHandler(watcher)
        progress_logger.removeHandler(watcher)
        absl_logging.set_verbosity(previous_verbosity)
    return events
