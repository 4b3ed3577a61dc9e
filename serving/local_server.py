"""Runs `ctpipe serve` as a child process on a free loopback port, as one would run
`tensorflow_model_server`: the same flags, reached only through its gRPC API.

Used by the infra validation step, the demo and the tests. A separate process isolates the
caller from whatever the served model does when it loads or runs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from serving.client import (ModelEndedError, PredictionClient, ServingError, TlsConfig,
                            VersionStatus)

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def serve_command(port: int, model_name: str, model_base_path: str | Path | None,
                  extra_flags: Sequence[str] = ()) -> list[str]:
    """`ctpipe serve` with TF Serving's flags, run by this interpreter. Without a base path
    the models come from a --model_config_file in `extra_flags`."""
    model_flags = ([f"--model_name={model_name}", f"--model_base_path={model_base_path}"]
                   if model_base_path is not None else [])
    return [sys.executable, "-m", "ctpipe.cli", "serve", f"--port={port}", *model_flags,
            *extra_flags]


class ServerProcess:
    """A started server; `target` is its gRPC address."""

    def __init__(self, process: subprocess.Popen, target: str, log_path: Path,
                 tls: TlsConfig | None = None):
        self.process = process
        self.target = target
        self.log_path = log_path
        self.tls = tls

    def output_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_until_available(self, model_name: str, timeout: float) -> list[VersionStatus]:
        """Polls GetModelStatus until every version is AVAILABLE; fails fast if the process
        exits (TF Serving exits when a model's first load fails) or a version ends."""
        deadline = time.monotonic() + timeout
        with PredictionClient(self.target, model_name, timeout=2.0, tls=self.tls) as client:
            while True:
                if self.process.poll() is not None:
                    raise ServingError(f"server exited with status {self.process.returncode} "
                                       f"before the model was available:\n{self.output_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServingError(f"model {model_name} not available on {self.target} "
                                       f"after {timeout:.0f} s:\n{self.output_tail()}")
                try:
                    return client.wait_until_available(min(remaining, 1.0))
                except ModelEndedError:
                    raise
                except ServingError as err:
                    log.debug("waiting for %s: %s", self.target, err)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_server(model_name: str, model_base_path: str | Path | None, *,
                   extra_flags: Sequence[str] = (), ready_timeout: float = 120.0,
                   log_dir: Path | None = None, tls: TlsConfig | None = None,
                   ) -> Iterator[ServerProcess]:
    """Starts `ctpipe serve`, waits until `model_name` is AVAILABLE (checked with `tls` when
    the server has --ssl_config_file), stops the server on exit."""
    port = free_port()
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="ctpipe-serve-"))
    log_path = log_dir / f"serve-{port}.log"
    command = serve_command(port, model_name, model_base_path, extra_flags)
    log.info("starting %s", " ".join(command))
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    with log_path.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=environment)
    server = ServerProcess(process, f"{LOOPBACK}:{port}", log_path, tls)
    try:
        server.wait_until_available(model_name, ready_timeout)
        yield server
    finally:
        server.stop()
