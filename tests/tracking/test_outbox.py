"""An unreachable tracking server never loses a record: the records wait in the outbox, the
server is reported once, and they arrive when it is back (a real `mlflow server` on loopback)
or on `ctpipe track sync`; a record the server refuses is named with the file keeping it."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ctpipe import cli
from ctpipe.tracking import outbox, store
from tests.tracking.conftest import pushed_run


def _command_errors(capsys) -> list[str]:
    """ctpipe's error lines (MLflow logs its own lines when it creates a store's tables)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("ctpipe:")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, folder: Path) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1 with a SQLite store; returns once it answers /health."""
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{folder / 'server.sqlite'}",
               "--artifacts-destination", str(folder / "server-artifacts")]
    log = (folder / "server.log").open("w")
    # Its own process group: `mlflow server` starts uvicorn and job consumers that must go too.
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                              start_new_session=True)
    deadline = time.monotonic() + 300  # a busy 2-core machine takes a minute or more
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server ended ({server.returncode}):\n"
                        + (folder / "server.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(1)
    _stop(server)
    pytest.fail("mlflow server did not answer within 300 s")


def _stop(server: subprocess.Popen) -> None:
    """Ends the server and every process it started."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole group has already ended
            os.killpg(server.pid, signal.SIGKILL)


def test_records_wait_for_an_unreachable_server_and_arrive_on_sync(tmp_path, capsys,
                                                                  constant_model_dir):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    folder = tmp_path / "outbox"
    record = pushed_run("taxi/2026-03-01T00:00:00", 1700000200, constant_model_dir,
                        tmp_path / "serving")
    first = outbox.send(folder, {"kind": outbox.RUN, "tracking_uri": uri,
                                 "record": record.to_json()}, timeout=2)
    second = outbox.send(folder, {"kind": outbox.LABELS, "tracking_uri": uri,
                                  "model": "big_tipper", "labels": {"stable": 1700000200}},
                         timeout=2)
    assert len(first) == 1 and first[0].startswith(f"MLflow at {uri} is unreachable (")
    assert second == [first[0].replace("1 record(s)", "2 record(s)")], "one line per delivery"
    assert len(outbox.pending(folder)) == 2

    assert cli.main(["track", "sync", "--outbox", str(folder), "--timeout", "2"]) == 1
    (error,) = _command_errors(capsys)
    assert "2 record(s) not sent" in error and f"MLflow at {uri}" in error

    server = _start_server(port, tmp_path)
    try:
        assert cli.main(["track", "sync", "--outbox", str(folder)]) == 0
        printed = capsys.readouterr().out
        assert "sent 2 record(s), 0 kept" in printed, printed
        assert outbox.pending(folder) == []
        mlflow = store.client(uri)
        (run,) = mlflow.search_runs(
            [mlflow.get_experiment_by_name(record.experiment).experiment_id])
        assert run.data.metrics == record.metrics and run.info.status == "FINISHED"
        (version,) = mlflow.search_model_versions("name = 'big_tipper'")
        assert dict(mlflow.get_registered_model("big_tipper").aliases) == {
            "champion": version.version}
        assert mlflow.list_artifacts(run.info.run_id, "saved_model"), "the SavedModel went too"
    finally:
        _stop(server)


def test_a_refused_record_is_an_error_naming_where_it_is_kept(tmp_path, capsys, store_uri,
                                                              constant_model_dir):
    record = pushed_run("taxi/2026-03-02T00:00:00", 1700000300, constant_model_dir,
                        tmp_path / "serving")
    record.experiment = ""  # MLflow refuses an experiment without a name
    kept = outbox.add(tmp_path / "outbox", {
        "kind": outbox.RUN, "tracking_uri": store_uri,
        "artifact_location": (tmp_path / "artifacts").as_uri(), "record": record.to_json()})

    assert cli.main(["track", "sync", "--outbox", str(tmp_path / "outbox")]) == 1
    (error,) = _command_errors(capsys)
    assert f"refused the run record kept in {kept}" in error
    assert Path(kept).is_file(), "nothing lost"
