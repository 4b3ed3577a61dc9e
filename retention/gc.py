"""Retention (`ctpipe gc`, and `gc_keep_runs` after each local run): delete the artifacts no
one needs any more, from disk and in ML Metadata, so a workspace that runs every quarter for
years stays bounded. ML Metadata has no retention of its own.

What is kept, whatever its age (the rest of the pipeline root's artifacts go):
- every artifact of the newest `keep_runs` runs (inputs and outputs of their executions);
- every artifact of a run that pushed the version the serving folder serves (its newest) or a
  version a label names in TF Serving's model config file (so `ctpipe lineage` can tell what
  made it);
- every stored span the span index names (the windows of later runs refer to them there);
- every artifact of an execution that has not finished (a run in progress).

Order, so that a gc killed at any point leaves nothing half-deleted at an artifact's URI:
1. the artifact is marked MARKED_FOR_DELETION in ML Metadata: TFX's cache and input resolution
   take only LIVE artifacts, so no run starting now reuses it;
2. the protection is checked again: a run that linked it meanwhile (a cache hit) gets it back
   (LIVE again, nothing deleted);
3. its folder is renamed aside (`<uri>.gc-deleting`, one atomic rename), renamed again
   (`.gc-removing`) as its removal begins, then removed;
4. it is marked DELETED.
A gc that was killed finishes what it had marked when it runs again. Readers (`ctpipe status`,
the report, `ctpipe lineage`) treat an artifact that is not LIVE as gone.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ctpipe.common import metadata, properties
from ctpipe.common.errors import UserError
from ctpipe.common.layout import version_folders
from ctpipe.serving.client import version_labels

_ARTIFACT = metadata_store_pb2.Artifact
_EXECUTION = metadata_store_pb2.Execution
_FINISHED = (_EXECUTION.COMPLETE, _EXECUTION.CACHED, _EXECUTION.FAILED, _EXECUTION.CANCELED)
# An artifact's folder moved aside whole, and then while it is being removed.
TRASH_SUFFIX, REMOVING_SUFFIX = ".gc-deleting", ".gc-removing"
RUN_CONTEXT = "pipeline_run"


class RetentionError(UserError):
    pass


@dataclasses.dataclass(frozen=True)
class Doomed:
    """An artifact gc would delete: its id, type, URI, size on disk and the run that made it."""

    artifact_id: int
    type_name: str
    uri: str
    size: int
    run: str


@dataclasses.dataclass
class Plan:
    keep_runs: int
    doomed: list[Doomed]
    kept: dict[str, int]  # reason -> artifacts kept for it
    resumed: list[int]  # artifacts a killed gc had marked, to finish
    restored: list[int]  # artifacts a killed gc had marked that are needed again

    @property
    def size(self) -> int:
        return sum(d.size for d in self.doomed)

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would delete" if dry_run else "deleting"
        out = [f"gc: {verb} {len(self.doomed)} artifacts, {self.size / 1e6:,.1f} MB "
               f"(keeping the newest {self.keep_runs} runs)"]
        out += [f"  {d.run}  {d.type_name:<20} {d.size / 1e6:9.2f} MB  {d.uri}"
                for d in self.doomed]
        out += [f"  kept {count} artifacts: {reason}" for reason, count in self.kept.items()]
        if self.resumed:
            out.append(f"  finishing {len(self.resumed)} artifacts an interrupted gc had "
                       "marked")
        if self.restored:
            out.append(f"  keeping {len(self.restored)} artifacts an interrupted gc had marked "
                       "(needed again)")
        return out


def open_store(workspace: Path) -> metadata_store.MetadataStore:
    return metadata.open_store(workspace, writable=True)


def _size(uri: str) -> int:
    if os.path.isfile(uri):
        return os.path.getsize(uri)
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(uri) for name in names)


def _span_index_uris(span_index: str) -> set[str]:
    """The stored spans the span index names (their artifacts' URIs)."""
    if not os.path.isdir(span_index):
        return set()
    uris = set()
    for name in os.listdir(span_index):
        if name.startswith("span-") and name.endswith(".json"):
            with open(os.path.join(span_index, name)) as handle:
                uris.add(os.path.normpath(json.load(handle)["uri"]))
    return uris


def _served_versions(serving_model_dir: str, model_config: str, model_name: str) -> set[str]:
    """The version TF Serving serves from the folder (the newest), and versions a label
    names."""
    folders = version_folders(serving_model_dir) if os.path.isdir(serving_model_dir) else {}
    versions = {str(max(folders))} if folders else set()
    if model_config and os.path.isfile(model_config):

        entry = version_labels.model_entry(version_labels.read_config(Path(model_config)),
                                           model_name)
        versions |= {str(v) for v in entry.version_labels.values()}
    return versions


class _Store:
    """The runs and what links artifacts to them, read once per check."""

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        runs = sorted(store.get_contexts_by_type(RUN_CONTEXT), key=lambda c: c.id)
        self.runs = {c.id: c.name for c in runs}
        self.order = [c.id for c in runs]
        self.run_of: dict[int, set[int]] = {}  # execution id -> run context ids
        self.executions = {}
        for context in runs:
            for execution in store.get_executions_by_context(context.id):
                self.executions[execution.id] = execution
                self.run_of.setdefault(execution.id, set()).add(context.id)
        for execution in store.get_executions():
            self.executions.setdefault(execution.id, execution)
        self.events = store.get_events_by_execution_ids(list(self.executions))
        self.runs_of_artifact: dict[int, set[int]] = {}
        self.unfinished: set[int] = set()
        for event in self.events:
            runs_here = self.run_of.get(event.execution_id, set())
            self.runs_of_artifact.setdefault(event.artifact_id, set()).update(runs_here)
            if self.executions[event.execution_id].last_known_state not in _FINISHED:
                self.unfinished.add(event.artifact_id)


def _protection(view: _Store, keep_runs: int, served: set[str], stored_spans: set[str]
                ) -> dict[int, str]:
    """Artifact id -> why it is kept."""
    kept_runs = set(view.order[-keep_runs:]) if keep_runs else set()
    pushing_runs = set()
    artifacts = {a.id: a for a in view.store.get_artifacts()}
    for artifact in artifacts.values():
        if artifact.custom_properties.get(properties.PUSHED) is not None and (
                artifact.custom_properties[properties.PUSHED].int_value == 1):
            version = artifact.custom_properties.get(properties.PUSHED_VERSION)
            if version is not None and version.string_value in served:
                pushing_runs |= view.runs_of_artifact.get(artifact.id, set())
    why = {}
    for artifact_id, artifact in artifacts.items():
        runs = view.runs_of_artifact.get(artifact_id, set())
        if artifact_id in view.unfinished:
            why[artifact_id] = "used by a step still running"
        elif runs & kept_runs:
            why[artifact_id] = f"of the newest {keep_runs} runs"
        elif runs & pushing_runs:
            why[artifact_id] = "of a run that pushed a served or labelled version"
        elif os.path.normpath(artifact.uri) in stored_spans:
            why[artifact_id] = "a stored span the span index names"
    return why


def plan(workspace: Path, pipeline_root: str, span_index: str, serving_model_dir: str,
         model_config: str, model_name: str, keep_runs: int) -> Plan:
    """What gc would delete now, and what it keeps and why."""
    if keep_runs < 1:
        raise RetentionError(f"keep_runs must be at least 1 (the newest run's artifacts are "
                             f"what the next run caches against), got {keep_runs}")
    if "://" in pipeline_root:
        raise RetentionError(f"gc deletes local folders only; the pipeline root is "
                             f"{pipeline_root}")
    store = open_store(workspace)
    view = _Store(store)
    why = _protection(view, keep_runs, _served_versions(serving_model_dir, model_config,
                                                        model_name),
                      _span_index_uris(span_index))
    root = os.path.normpath(pipeline_root) + os.sep
    types = {t.id: t.name for t in store.get_artifact_types()}
    doomed, kept, resumed, restored = [], {}, [], []
    for artifact in store.get_artifacts():
        marked = artifact.state == _ARTIFACT.MARKED_FOR_DELETION
        if artifact.state not in (_ARTIFACT.LIVE, _ARTIFACT.MARKED_FOR_DELETION) or not (
                os.path.normpath(artifact.uri) + os.sep).startswith(root):
            continue
        if artifact.id in why:
            kept[why[artifact.id]] = kept.get(why[artifact.id], 0) + 1
            if marked:
                restored.append(artifact.id)
            continue
        if marked:
            resumed.append(artifact.id)
        runs = sorted(view.runs_of_artifact.get(artifact.id, set()))
        doomed.append(Doomed(artifact.id, types.get(artifact.type_id, "?"), artifact.uri,
                             _size(artifact.uri) if os.path.exists(artifact.uri) else 0,
                             view.runs[runs[-1]] if runs else "no run"))
    return Plan(keep_runs, doomed, kept, resumed, restored)


def collect(workspace: Path, found: Plan, protect: Callable[[], dict[int, str]],
            step: Callable[[str, int], None] = lambda stage, artifact_id: None) -> list[int]:
    """Deletes what `found` lists, in the order the module describes; `protect()` reads the
    protection again (after marking), `step` is told each stage as it completes (progress).
    Returns the ids deleted."""
    store = open_store(workspace)
    for artifact in store.get_artifacts_by_id(found.restored):
        _restore(store, artifact)
    deleted = []
    for doomed in found.doomed:
        (artifact,) = store.get_artifacts_by_id([doomed.artifact_id])
        artifact.state = _ARTIFACT.MARKED_FOR_DELETION
        store.put_artifacts([artifact])
        step("marked", artifact.id)
        if artifact.id in protect():  # linked meanwhile (a run reused it): it stays
            _restore(store, artifact)
            step("kept", artifact.id)
            continue
        trash = artifact.uri.rstrip("/") + TRASH_SUFFIX
        removing = artifact.uri.rstrip("/") + REMOVING_SUFFIX
        if os.path.exists(artifact.uri):
            os.replace(artifact.uri, trash)
        step("moved", artifact.id)
        if os.path.exists(trash):
            os.replace(trash, removing)
        if os.path.isdir(removing):
            shutil.rmtree(removing)
        elif os.path.exists(removing):
            os.remove(removing)
        step("removed", artifact.id)
        artifact.state = _ARTIFACT.DELETED
        store.put_artifacts([artifact])
        deleted.append(artifact.id)
        step("deleted", artifact.id)
    return deleted


def _restore(store: metadata_store.MetadataStore, artifact: _ARTIFACT) -> None:
    """LIVE again, its folder back at its URI if it had been moved aside whole; a folder whose
    removal had begun cannot come back (RetentionError names it)."""
    trash = artifact.uri.rstrip("/") + TRASH_SUFFIX
    if not os.path.exists(artifact.uri) and os.path.exists(trash):
        os.replace(trash, artifact.uri)
    if os.path.exists(artifact.uri.rstrip("/") + REMOVING_SUFFIX):
        raise RetentionError(f"artifact {artifact.id} ({artifact.uri}) is needed again, but an "
                             "interrupted gc had begun removing it; it stays marked for "
                             "deletion: re-run the step that made it")
    artifact.state = _ARTIFACT.LIVE
    store.put_artifacts([artifact])


def run_gc(workspace: Path, pipeline_root: str, span_index: str, serving_model_dir: str,
           model_config: str, model_name: str, keep_runs: int, dry_run: bool,
           step: Callable[[str, int], None] = lambda stage, artifact_id: None) -> Plan:
    """Plans, and unless `dry_run` deletes; the plan says what went (or would go)."""
    settings = (pipeline_root, span_index, serving_model_dir, model_config, model_name)
    found = plan(workspace, *settings, keep_runs)
    if dry_run:
        return found

    def protect() -> dict[int, str]:
        view = _Store(open_store(workspace))
        return _protection(view, keep_runs, _served_versions(serving_model_dir, model_config,
                                                             model_name),
                           _span_index_uris(span_index))

    collect(workspace, found, protect, step)
    return found
