"""`ctpipe gc`'s order and protections on a real ML Metadata store laid out as TFX lays out a
workspace's runs (contexts, executions, events, artifacts with folders); the end-to-end test
(tests/test_e2e.py) runs it on a real pipeline's workspace."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from ctpipe.common import properties
from ctpipe.common.errors import UserError
from ctpipe.retention import gc


class _Killed(BaseException):
    """Stands for SIGKILL at one point of gc's order."""


def _workspace(root: Path, runs: int = 4) -> dict:
    """`runs` runs of three steps each (ExampleGen -> Trainer -> Pusher), each artifact a folder
    with a file; run 2 pushed version 200, the newest still in the serving folder (so the one
    served); span 1's examples (run 1's) are named by the span index."""
    ws = root / "ws"
    ws.mkdir()
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = str(ws / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    run_type = store.put_context_type(mlmd.ContextType(name=gc.RUN_CONTEXT))
    types = {name: store.put_artifact_type(mlmd.ArtifactType(name=name))
             for name in ("Examples", "Model", "PushedModel")}
    step = store.put_execution_type(mlmd.ExecutionType(name="Step"))
    artifacts: dict[tuple[int, str], int] = {}
    for run in range(1, runs + 1):
        [context] = store.put_contexts([mlmd.Context(type_id=run_type, name=f"run-{run}")])
        previous = None
        for name in ("Examples", "Model", "PushedModel"):
            folder = (root / "serving" / "big_tipper" / f"{run}00" if name == "PushedModel"
                      else ws / "pipeline_root" / name / str(run))
            folder.mkdir(parents=True)
            (folder / "data").write_bytes(bytes(1000 * run))
            artifact = mlmd.Artifact(type_id=types[name], uri=str(folder),
                                     state=mlmd.Artifact.LIVE)
            if name == "PushedModel":
                artifact.custom_properties[properties.PUSHED].int_value = 1
                artifact.custom_properties[properties.PUSHED_VERSION].string_value = f"{run}00"
            [artifact_id] = store.put_artifacts([artifact])
            artifacts[(run, name)] = artifact_id
            [execution] = store.put_executions([mlmd.Execution(
                type_id=step, last_known_state=mlmd.Execution.COMPLETE)])
            events = [mlmd.Event(artifact_id=artifact_id, execution_id=execution,
                                 type=mlmd.Event.OUTPUT)]
            if previous is not None:
                events.append(mlmd.Event(artifact_id=previous, execution_id=execution,
                                         type=mlmd.Event.INPUT))
            store.put_events(events)
            store.put_attributions_and_associations(
                [mlmd.Attribution(context_id=context, artifact_id=artifact_id)],
                [mlmd.Association(context_id=context, execution_id=execution)])
            previous = artifact_id
    # Only version 200 is still served; the index names span 1's stored examples.
    for run in range(1, runs + 1):
        if run != 2:
            for path in (root / "serving" / "big_tipper" / f"{run}00").iterdir():
                path.unlink()
            (root / "serving" / "big_tipper" / f"{run}00").rmdir()
    index = ws / "pipeline_root" / "span-index"
    index.mkdir()
    (index / "span-1.json").write_text(json.dumps(
        {"span": 1, "uri": str(ws / "pipeline_root" / "Examples" / "1")}))
    settings = (str(ws / "pipeline_root"), str(index), str(root / "serving" / "big_tipper"), "",
                "big_tipper")
    return {"ws": ws, "artifacts": artifacts, "settings": settings}


def _states(ws: Path) -> dict[int, int]:
    return {a.id: a.state for a in gc.open_store(ws).get_artifacts()}


def test_the_plan_keeps_the_newest_runs_the_served_versions_run_and_indexed_spans(tmp_path):
    made = _workspace(tmp_path)
    found = gc.plan(made["ws"], *made["settings"], keep_runs=1)
    doomed = {d.artifact_id for d in found.doomed}
    a = made["artifacts"]
    # Run 4 (newest), run 2 (pushed the served version 200), span 1's examples: kept.
    assert doomed == {a[(1, "Model")], a[(3, "Examples")], a[(3, "Model")]}
    assert found.kept == {"of the newest 1 runs": 2,
                          "of a run that pushed a served or labelled version": 2,
                          "a stored span the span index names": 1}
    assert found.size == 1000 + 3000 * 2
    lines = found.lines(dry_run=True)
    assert lines[0] == "gc: would delete 3 artifacts, 0.0 MB (keeping the newest 1 runs)"
    assert _states(made["ws"]) == {i: mlmd.Artifact.LIVE for i in _states(made["ws"])}
    with pytest.raises(UserError, match="keep_runs must be at least 1"):
        gc.plan(made["ws"], *made["settings"], keep_runs=0)


@pytest.mark.parametrize("killed_after", ["marked", "moved", "removed"])
def test_a_killed_gc_leaves_each_artifact_whole_or_gone_and_the_next_finishes(tmp_path,
                                                                              killed_after):
    made = _workspace(tmp_path)
    ws, a = made["ws"], made["artifacts"]
    victim = a[(3, "Examples")]

    def kill(stage: str, artifact_id: int) -> None:
        if stage == killed_after and artifact_id == victim:
            raise _Killed()

    with pytest.raises(_Killed):
        gc.run_gc(ws, *made["settings"], 1, dry_run=False, step=kill)
    uri = ws / "pipeline_root" / "Examples" / "3"
    assert _states(ws)[victim] == mlmd.Artifact.MARKED_FOR_DELETION
    # Whole at its URI (killed before the move) or not there at all: never part of it.
    assert uri.is_dir() == (killed_after == "marked")
    if uri.is_dir():
        assert (uri / "data").read_bytes() == bytes(3000)
    again = gc.run_gc(ws, *made["settings"], 1, dry_run=False)
    assert victim in again.resumed
    states = _states(ws)
    assert states[victim] == mlmd.Artifact.DELETED and not uri.exists()
    assert not list((ws / "pipeline_root").rglob("*.gc-*"))
    assert mlmd.Artifact.MARKED_FOR_DELETION not in states.values()


def test_a_run_that_reuses_a_marked_artifact_keeps_it(tmp_path):
    """A run starting while gc works links an artifact gc has just marked (as a cached step
    links its outputs): gc puts it back and deletes the others."""
    made = _workspace(tmp_path)
    ws, a = made["ws"], made["artifacts"]
    reused = a[(3, "Model")]

    def racing_run(stage: str, artifact_id: int) -> None:
        if stage == "marked" and artifact_id == reused:
            store = gc.open_store(ws)
            [execution] = store.put_executions([mlmd.Execution(
                type_id=store.get_execution_type("Step").id,
                last_known_state=mlmd.Execution.RUNNING)])
            store.put_events([mlmd.Event(artifact_id=reused, execution_id=execution,
                                         type=mlmd.Event.INPUT)])

    found = gc.run_gc(ws, *made["settings"], 1, dry_run=False, step=racing_run)
    states = _states(ws)
    assert states[reused] == mlmd.Artifact.LIVE
    assert (ws / "pipeline_root" / "Model" / "3" / "data").read_bytes() == bytes(3000)
    assert {d.artifact_id for d in found.doomed} - {reused} == {
        i for i, s in states.items() if s == mlmd.Artifact.DELETED}


def test_what_serving_needs_is_refused_until_serving_lets_it_go(tmp_path):
    """Version 200 is served: the run that made it stays whatever keep_runs says; once the
    version folder is gone (and no label names it), its run's artifacts may go."""
    made = _workspace(tmp_path)
    ws, a = made["ws"], made["artifacts"]
    gc.run_gc(ws, *made["settings"], 1, dry_run=False)
    states = _states(ws)
    assert states[a[(2, "Examples")]] == states[a[(2, "Model")]] == mlmd.Artifact.LIVE
    assert (ws / "pipeline_root" / "Model" / "2" / "data").is_file()
    served = tmp_path / "serving" / "big_tipper" / "200"
    (served / "data").unlink()
    served.rmdir()
    gone = gc.run_gc(ws, *made["settings"], 1, dry_run=False)
    assert {d.artifact_id for d in gone.doomed} == {a[(2, "Examples")], a[(2, "Model")]}
    assert not (ws / "pipeline_root" / "Model" / "2").exists()
