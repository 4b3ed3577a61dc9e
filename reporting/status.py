"""What a workspace's ML Metadata store says: runs, their state and spans, pushes, blessed model.

Reads the SQLite store read-only with ml_metadata alone (no TensorFlow, no TFX), so it is fast.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from ctpipe.common import properties
from ctpipe.common.metadata import open_store

_STATE = metadata_store_pb2.Execution.State
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_GONE = (metadata_store_pb2.Artifact.MARKED_FOR_DELETION, metadata_store_pb2.Artifact.DELETED)


@dataclasses.dataclass
class RunSummary:
    run_id: str
    state: str  # succeeded | failed | incomplete
    nodes: dict[str, str]  # node id -> executed | cached | failed | running
    spans: str
    pushed_version: str | None
    blessed: bool | None
    context_id: int  # the run's context in ML Metadata (WorkspaceStatus.run_outputs)


@dataclasses.dataclass
class SpanHealth:
    span: int
    drifted: str  # features that crossed their drift thresholds, comma-separated
    served_version: int | None  # the model scored on the span before training on it
    auc: float | None
    auc_when_pushed: float | None
    concept_drift: bool
    # Every drift score of the run and its threshold: {"feature[/presence]": [score, threshold]}.
    scores: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def line(self) -> str:
        drift = f"data drift in {self.drifted}" if self.drifted else "no data drift"
        if not self.served_version:
            return f"span {self.span:<4} {drift}; no served model to score yet"
        then = (f", {self.auc_when_pushed:.4f} when pushed" if self.auc_when_pushed is not None
                else "")
        verdict = "CONCEPT DRIFT" if self.concept_drift else "no concept drift"
        return (f"span {self.span:<4} {drift}; served version {self.served_version} AUC "
                f"{self.auc:.4f}{then}: {verdict}")


@dataclasses.dataclass
class Pushed:
    version: str
    destination: str
    model_id: int


def custom_int(artifact_or_execution, key: str) -> int | None:
    value = artifact_or_execution.custom_properties.get(key)
    return value.int_value if value is not None else None


def custom_float(artifact, key: str) -> float | None:
    value = artifact.custom_properties.get(key)
    return value.double_value if value is not None else None


def custom_str(artifact, key: str) -> str | None:
    value = artifact.custom_properties.get(key)
    return value.string_value if value is not None else None


class WorkspaceStatus:
    def __init__(self, workspace: Path):
        self.store = open_store(workspace)
        self.node_of: dict[int, str] = {}
        for context in self.store.get_contexts_by_type("node"):
            node = context.name.split(".", 1)[-1]
            for execution in self.store.get_executions_by_context(context.id):
                self.node_of[execution.id] = node

    def _artifacts(self, execution_ids: list[int], kinds) -> list[metadata_store_pb2.Artifact]:
        events = [e for e in self.store.get_events_by_execution_ids(execution_ids)
                  if e.type in kinds]
        if not events:
            return []
        return self.store.get_artifacts_by_id(sorted({e.artifact_id for e in events}))

    def runs(self, limit: int) -> list[RunSummary]:
        contexts = sorted(self.store.get_contexts_by_type("pipeline_run"),
                          key=lambda c: (c.create_time_since_epoch, c.id), reverse=True)[:limit]
        return [self._summarise(context) for context in contexts]

    def _summarise(self, context) -> RunSummary:
        executions = self.store.get_executions_by_context(context.id)
        nodes = {}
        for execution in sorted(executions, key=lambda e: e.id):
            label = {_STATE.COMPLETE: "executed", _STATE.CACHED: "cached",
                     _STATE.FAILED: "failed"}.get(execution.last_known_state, "running")
            nodes[self.node_of.get(execution.id, execution.type)] = label
        if "failed" in nodes.values():
            state = "failed"
        elif "Pusher" in nodes and "running" not in nodes.values():
            state = "succeeded"
        else:
            state = "incomplete"
        by_type = {}
        for artifact in self._artifacts([e.id for e in executions], _OUTPUT_EVENTS):
            by_type.setdefault(artifact.type, []).append(artifact)
        examples = by_type.get("Examples", [])
        # The window when the run got that far, else the span its ExampleGen ingested.
        spans = ", ".join(sorted({custom_str(a, "window_spans") for a in examples
                                  if custom_str(a, "window_spans")})
                          or sorted({str(custom_int(a, "span")) for a in examples})) or "-"
        pushed = [a for a in by_type.get("PushedModel", []) if custom_int(a, "pushed") == 1]
        blessings = by_type.get("ModelBlessing", [])
        return RunSummary(
            run_id=context.name, state=state, nodes=nodes, spans=spans,
            pushed_version=custom_str(pushed[0], "pushed_version") if pushed else None,
            blessed=bool(custom_int(blessings[0], "blessed")) if blessings else None,
            context_id=context.id)

    def run_outputs(self, context_id: int) -> dict[tuple[str, str], metadata_store_pb2.Artifact]:
        """What a run's steps output, by (step, output key); a cached step's outputs are the
        artifacts an earlier run made, which ML Metadata links to the cached execution too.
        Artifacts `ctpipe gc` deleted (or is deleting) are left out: their files are gone."""
        executions = {e.id: e for e in self.store.get_executions_by_context(context_id)}
        events = [e for e in self.store.get_events_by_execution_ids(list(executions))
                  if e.type in _OUTPUT_EVENTS and e.path.steps]
        artifacts = {a.id: a for a in self.store.get_artifacts_by_id(
            sorted({e.artifact_id for e in events})) if a.state not in _GONE} if events else {}
        return {(self.node_of.get(e.execution_id, executions[e.execution_id].type),
                 e.path.steps[0].key): artifacts[e.artifact_id] for e in events
                if e.artifact_id in artifacts}

    def pushes(self) -> list[Pushed]:
        result = []
        for execution in self.store.get_executions():
            if self.node_of.get(execution.id) != "Pusher":
                continue
            outputs = [a for a in self._artifacts([execution.id], _OUTPUT_EVENTS)
                       if a.type == "PushedModel" and custom_int(a, "pushed") == 1]
            models = [a for a in self._artifacts([execution.id], _INPUT_EVENTS)
                      if a.type == "Model"]
            for pushed in outputs:
                result.append(Pushed(custom_str(pushed, "pushed_version") or "?",
                                     custom_str(pushed, "pushed_destination") or "?",
                                     models[0].id if models else -1))
        return sorted({p.version: p for p in result}.values(), key=lambda p: p.version)

    def span_history(self) -> list[SpanHealth]:
        """Per span, the newest data-drift and concept-drift findings recorded for it."""
        history: dict[int, SpanHealth] = {}
        for execution in sorted(self.store.get_executions(), key=lambda e: e.id):
            if self.node_of.get(execution.id) != "ConceptDrift":
                continue
            if execution.last_known_state not in (_STATE.COMPLETE, _STATE.CACHED):
                continue
            for found in self._artifacts([execution.id], _OUTPUT_EVENTS):
                span = custom_int(found, properties.SPAN)
                history[span] = SpanHealth(
                    span=span, drifted=custom_str(found, properties.DRIFTED_FEATURES) or "",
                    served_version=custom_int(found, properties.SERVED_VERSION),
                    auc=custom_float(found, "auc"),
                    auc_when_pushed=custom_float(found, "auc_when_pushed"),
                    concept_drift=bool(custom_int(found, "concept_drift")),
                    scores=json.loads(custom_str(found, properties.DRIFT_SCORES) or "{}"))
        return [history[span] for span in sorted(history)]


def drift_trend(history: list[SpanHealth], spans: int = 8, features: int = 6
                ) -> tuple[list[int], list[tuple[str, list[float | None]]]]:
    """The last `spans` spans with scores, and the `features` measures that came nearest their
    thresholds there: (spans, [(measure, [score / threshold per span])]); 1 is the threshold."""
    recent = [h for h in history if h.scores][-spans:]
    ratios: dict[str, list[float | None]] = {}
    for position, health in enumerate(recent):
        for label, (score, threshold) in health.scores.items():
            ratios.setdefault(label, [None] * len(recent))[position] = (
                score / threshold if threshold else None)
    nearest = sorted(ratios, key=lambda label: -max(r for r in ratios[label] if r is not None))
    return [h.span for h in recent], [(label, ratios[label]) for label in nearest[:features]]


def _trend_lines(history: list[SpanHealth]) -> list[str]:
    spans, rows = drift_trend(history)
    if not spans:
        return ["  none recorded"]
    width = max(len(label) for label, _ in rows) + 2
    lines = ["  " + " " * width + "".join(f"{'span ' + str(span):>9}" for span in spans)]
    for label, ratios in rows:
        cells = "".join(f"{'-' if r is None else f'{r:.2f}' + ('!' if r > 1 else ' '):>9}"
                        for r in ratios)
        lines.append(f"  {label:<{width}}{cells}")
    return lines


def latest_output(workspace: Path, type_name: str,
                  output_key: str) -> metadata_store_pb2.Artifact | None:
    """The newest artifact of `type_name` recorded as a step's output named `output_key`."""
    store = open_store(workspace)
    artifacts = {a.id: a for a in store.get_artifacts_by_type(type_name)}
    if not artifacts:
        return None
    events = store.get_events_by_artifact_ids(list(artifacts))
    keyed = [artifacts[e.artifact_id] for e in events
             if e.type in _OUTPUT_EVENTS and e.path.steps and e.path.steps[0].key == output_key]
    return max(keyed, key=lambda a: (a.create_time_since_epoch, a.id), default=None)


def run_time(run_id: str) -> str:
    """A run id (an ISO timestamp) as a readable time; other ids as they are."""
    try:
        return dt.datetime.fromisoformat(run_id).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return run_id


def _run_line(run: RunSummary) -> str:
    failed = [n for n, s in run.nodes.items() if s == "failed"]
    executed = sum(1 for s in run.nodes.values() if s == "executed")
    cached = sum(1 for s in run.nodes.values() if s == "cached")
    detail = f"failed at {failed[0]}" if failed else f"{executed} executed, {cached} cached"
    blessing = {True: "blessed", False: "not blessed", None: "not evaluated"}[run.blessed]
    pushed = f"pushed version {run.pushed_version}" if run.pushed_version else "nothing pushed"
    return (f"{run_time(run.run_id)}  {run.state:<10} spans {run.spans:<8} {detail}; "
            f"model {blessing}; {pushed}")


def format_status(workspace: Path, limit: int = 10) -> str:
    status = WorkspaceStatus(workspace)
    runs = status.runs(limit)
    lines = [f"Workspace {Path(workspace).resolve()}", "", f"Recent runs ({len(runs)}):"]
    lines += [f"  {_run_line(run)}" for run in runs] or ["  none"]
    pushes = status.pushes()
    lines += ["", "Pushed versions (TF Serving serves the newest):"]
    lines += [f"  {push.version}  {push.destination}" + ("  <- served" if push is pushes[-1]
                                                         else "") for push in pushes]
    if not pushes:
        lines.append("  none")
    history = status.span_history()
    lines += ["", "Drift and concept drift by span (before training on it):"]
    lines += [f"  {health.line()}" for health in history] or ["  none recorded"]
    lines += ["", "Drift scores by span (score / threshold; above 1 is drift, marked !):"]
    lines += _trend_lines(history)
    return "\n".join(lines)


def format_latest_run(workspace: Path) -> str:
    runs = WorkspaceStatus(workspace).runs(1)
    return _run_line(runs[0]) if runs else "no run recorded"
