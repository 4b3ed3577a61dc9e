"""`ctpipe lineage VERSION`: which data, statistics, schema, code and run made a pushed version,
how it was judged and where it serves, in one view.

Read from the workspace's ML Metadata store (the run whose Pusher pushed the version, and the
artifacts its steps produced or reused), the version's folder (model card and push record) and
the serving side: TF Serving's model config file (the labels that point at it) and the
prediction logs (`ctpipe monitor`'s saved summary names them, or `--logs`). Like `ctpipe
status` it needs neither TensorFlow nor TFX.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from ctpipe.common import layout, properties
from ctpipe.common.errors import UserError
from ctpipe.common.window import MANIFEST_FILE, WindowManifest
from ctpipe.monitoring.options import WORKSPACE_SUMMARY
from ctpipe.reporting.contents import anomaly_lines
from ctpipe.reporting.status import WorkspaceStatus, custom_int, custom_str
from ctpipe.serving.client import version_labels
from ctpipe.serving.prediction_log import read_logs

SCHEMA_FILE = "schema.pbtxt"


class LineageError(UserError):
    pass


@dataclasses.dataclass
class Lineage:
    """Everything known about one pushed version; None where the record holds nothing."""

    version: str
    run_id: str
    destination: str
    pushed_at: str
    window: WindowManifest | None
    statistics_uri: str | None
    anomalies: list[str] | None
    drifted: str | None
    drift_scores: dict[str, list[float]]
    schema_uri: str | None
    schema_digest: str | None
    card: dict[str, Any] | None
    record: dict[str, Any] | None
    baseline: str
    blessed: bool | None
    infra_blessed: bool | None
    rollout: str | None
    labels: dict[str, int] | None
    model_config: str | None
    logs: str | None
    logged: dict[str, Any] | None

    def lines(self) -> list[str]:
        """The view as text (`ctpipe lineage`; the report shows the same lines)."""
        out = [f"Version {self.version}: pushed {self.pushed_at} by run {self.run_id} to "
               f"{self.destination}"]
        if self.window is not None:
            out.append(f"Data: spans {self.window.span_range} "
                       f"({sum(self.window.rows.values()):,} rows), each as stored:")
            out += [f"  span {entry.span}: fingerprint {entry.fingerprint}; rows "
                    f"{', '.join(f'{k} {v:,}' for k, v in sorted(entry.rows.items()))}; "
                    f"{entry.uri}" for entry in self.window.spans]
        out.append(f"Statistics of the newest span: {self.statistics_uri or 'not recorded'}")
        anomalies = ("none" if self.anomalies == [] else "; ".join(self.anomalies)
                     if self.anomalies else "not recorded")
        out.append(f"Schema anomalies: {anomalies}")
        if self.drifted is not None:
            nearest = sorted(self.drift_scores.items(),
                             key=lambda item: -item[1][0] / item[1][1] if item[1][1] else 0)
            scores = ", ".join(f"{label} {s:.3f}/{t:.3f}" for label, (s, t) in nearest[:3])
            out.append(f"Drift: {('in ' + self.drifted) if self.drifted else 'none'}"
                       + (f" (nearest their thresholds: {scores})" if scores else ""))
        out.append(f"Schema: {self.schema_uri or 'not recorded'}"
                   + (f" (sha256 {self.schema_digest})" if self.schema_digest else ""))
        card = self.card or {}
        out.append(f"Code version: {card.get('code_version', 'not recorded')}")
        out.append(f"Trainer: {card.get('training', '?')} training, started from "
                   f"{card.get('origin', 'not recorded')}, {card.get('steps', '?')} steps")
        record = self.record or {}
        auc, baseline_auc = record.get("auc"), record.get("baseline_auc")
        out.append(f"Evaluation: against {self.baseline}; AUC "
                   f"{'?' if auc is None else f'{auc:.4f}'}"
                   + ("" if baseline_auc is None else f" vs baseline {baseline_auc:.4f}")
                   + f"; blessed: {_yes(self.blessed)}, infra-validated: "
                   f"{_yes(self.infra_blessed)}")
        if self.model_config is None:
            out.append(f"Rollout: {self.rollout or 'direct'}; no model config file to label")
        else:
            named = ", ".join(sorted(k for k, v in (self.labels or {}).items()
                                     if str(v) == self.version)) or "no label"
            out.append(f"Rollout: {self.rollout or 'direct'}; labels now: {named} "
                       f"({self.model_config})")
        if self.logs is None:
            out.append("Prediction logs: none known (ctpipe monitor saves where they are, or "
                       "give --logs)")
        elif self.logged is None:
            out.append(f"Prediction logs: {self.logs} (not read)")
        else:
            out.append(f"Prediction logs: {self.logs}: {self.logged['records']:,} records of "
                       f"this version" + (f", {self.logged['first']} to {self.logged['last']}"
                                          if self.logged["records"] else ""))
        return out


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "not recorded"}[value]


def _read_text(uri: str, name: str) -> str | None:
    path = Path(uri) / name
    return path.read_text() if path.is_file() else None


def _pushing_run(status: WorkspaceStatus, version: str):
    """The first run whose Pusher pushed `version`, and its outputs."""
    for summary in reversed(status.runs(limit=10**6)):
        outputs = status.run_outputs(summary.context_id)
        pushed = outputs.get(("Pusher", "pushed_model"))
        if pushed is not None and custom_int(pushed, properties.PUSHED) == 1 and (
                custom_str(pushed, properties.PUSHED_VERSION) == version):
            return summary, outputs
    known = sorted(p.version for p in status.pushes())
    raise LineageError(f"no run pushed version {version} in this workspace (pushed: "
                       f"{', '.join(known) or 'none'})")


def _execution_property(status: WorkspaceStatus, node: str, context_id: int,
                        name: str) -> str | None:
    for execution in status.store.get_executions_by_context(context_id):
        if status.node_of.get(execution.id) == node and name in execution.custom_properties:
            value = execution.custom_properties[name]
            return getattr(value, value.WhichOneof("value"))
    return None


def _logged(logs: str, version: str) -> dict[str, Any]:
    stamps = [r.log_metadata.timestamp_secs for r in read_logs(logs)
              if str(r.log_metadata.model_spec.version.value) == version]
    when = lambda s: dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {"records": len(stamps), "first": when(min(stamps)) if stamps else None,
            "last": when(max(stamps)) if stamps else None}


def read_lineage(workspace: Path, version: str, logs: str | None = None) -> Lineage:
    """The lineage of a pushed version (raises LineageError naming what is missing)."""
    workspace = Path(workspace)
    status = WorkspaceStatus(workspace)
    summary, outputs = _pushing_run(status, version)
    pushed = outputs[("Pusher", "pushed_model")]
    destination = custom_str(pushed, properties.PUSHED_DESTINATION) or ""
    examples = outputs.get(("SpanWindow", "window_examples"))
    manifest = _read_text(examples.uri, MANIFEST_FILE) if examples is not None else None
    schema = outputs.get(("ImportSchemaGen", "schema")) or outputs.get(("SchemaGen", "schema"))
    schema_text = _read_text(schema.uri, SCHEMA_FILE) if schema is not None else None
    statistics = outputs.get(("StatisticsGen", "statistics"))
    anomalies = outputs.get(("ExampleValidator", "anomalies"))
    drift = outputs.get(("ValidationGate", "drift_report"))
    served = outputs.get(("ServedModel", "model"))
    blessing = outputs.get(("Evaluator", "blessing"))
    infra = outputs.get(("InfraValidation", "blessing"))
    found = {}
    for name in (layout.MODEL_CARD_FILE, layout.PUSH_RECORD_FILE):
        text = _read_text(destination, name) if "://" not in destination else None
        found[name] = json.loads(text) if text else None
    model_config = _execution_property(status, "Pusher", summary.context_id, "model_config")
    labels = None
    if model_config:

        entry = version_labels.model_entry(version_labels.read_config(Path(model_config)),
                                           _execution_property(status, "Pusher",
                                                               summary.context_id,
                                                               "model_name") or "big_tipper")
        labels = dict(entry.version_labels)
    if logs is None and (workspace / WORKSPACE_SUMMARY).is_file():
        logs = json.loads((workspace / WORKSPACE_SUMMARY).read_text()).get("logs")
    baseline = "no served model (the first push)"
    if served is not None and custom_int(served, properties.FOUND):
        baseline = f"served version {custom_int(served, properties.SERVED_VERSION)}"
    return Lineage(
        version=version, run_id=summary.run_id, destination=destination,
        pushed_at=dt.datetime.fromtimestamp(pushed.create_time_since_epoch / 1000,
                                            dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        window=WindowManifest.from_json(manifest) if manifest else None,
        statistics_uri=statistics.uri if statistics is not None else None,
        anomalies=anomaly_lines(anomalies) if anomalies is not None else None,
        drifted=custom_str(drift, properties.DRIFTED_FEATURES) or "" if drift else None,
        drift_scores=json.loads(custom_str(drift, properties.DRIFT_SCORES) or "{}")
        if drift is not None else {},
        schema_uri=schema.uri if schema is not None else None,
        schema_digest=hashlib.sha256(schema_text.encode()).hexdigest()[:16]
        if schema_text else None,
        card=found[layout.MODEL_CARD_FILE], record=found[layout.PUSH_RECORD_FILE],
        baseline=baseline,
        blessed=None if blessing is None else bool(custom_int(blessing, "blessed")),
        infra_blessed=None if infra is None else bool(custom_int(infra, "blessed")),
        rollout=_execution_property(status, "Pusher", summary.context_id, "rollout"),
        labels=labels, model_config=model_config or None, logs=logs,
        logged=_logged(logs, version) if logs else None)
