"""Runs a model server (`ctpipe serve`, or the gateway) as a child process, as one would run
`tensorflow_model_server`: the same flags, reached only through its ports. The caller names the
program: nothing here starts the command line (`ctpipe.cli.program` says how).

Used by the demo, the benchmarks and the tests. A separate process isolates the caller from
whatever the served model does when it loads or runs, and has its own interpreter lock. The
server picks a free port itself (`--port=0`) and is ready when it prints `Serving on HOST:PORT`,
which it does only once every model has an AVAILABLE version (TF Serving's start-up rule); a
server that cannot start exits, and its output says why.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from ctpipe.serving.server.errors import StartupError

log = logging.getLogger(__name__)

_READY = re.compile(r"^Serving on (?P<host>\S+):(?P<port>\d+)(?: \(REST on port (?P<rest>\d+)\))?$",
                    re.MULTILINE)
_POLL_SECONDS = 0.05


class ServerProcess:
    """A started server; `target` is its gRPC address, `rest_port` its REST port."""

    def __init__(self, program: Sequence[str], flags: Sequence[str], log_path: Path,
                 ready_timeout: float = 120.0):
        """Starts `program` (`ctpipe serve` or `ctpipe gateway`, which both announce
        `Serving on HOST:PORT` once ready) with `flags` (TF Serving's; `--port=0` is added) and
        waits until it is ready; StartupError (with the end of its output) if it exits or times
        out first."""
        self.log_path = log_path
        self.name = " ".join(Path(part).name for part in program[-2:])
        self.command = [*program, "--port=0", *flags]
        log.info("starting %s", " ".join(self.command))
        environment = dict(os.environ,
                           TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        with log_path.open("wb") as output:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=environment)
        try:
            ready = self._wait_until_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise
        self.target = f"{ready['host']}:{ready['port']}"
        self.port = int(ready["port"])
        self.rest_port = int(ready["rest"]) if ready["rest"] else None

    def _wait_until_ready(self, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            ready = _READY.search(self.log_path.read_text(errors="replace"))
            if ready:
                return ready
            if self.process.poll() is not None:
                raise StartupError(f"{self.name} exited with status "
                                   f"{self.process.returncode} before serving:\n"
                                   f"{self.output_tail()}")
            if time.monotonic() >= deadline:
                raise StartupError(f"{self.name} was not serving after "
                                   f"{timeout:.0f} s:\n{self.output_tail()}")
            time.sleep(_POLL_SECONDS)

    def output_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a clean stop, as TF Serving), SIGKILL after `timeout`; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(program: Sequence[str], model_name: str, model_base_path: str | Path, *,
                   extra_flags: Sequence[str] = (), ready_timeout: float = 120.0,
                   log_dir: Path | None = None) -> Iterator[ServerProcess]:
    """Serves one model (TF Serving's --model_name/--model_base_path) until the block ends;
    the server's output goes to a new `serve-*.log` in `log_dir` (a temporary folder by
    default)."""
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="ctpipe-serve-"))
    handle, name = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=log_dir)
    os.close(handle)
    flags = [f"--model_name={model_name}", f"--model_base_path={model_base_path}", *extra_flags]
    with ServerProcess(program, flags, Path(name), ready_timeout) as server:
        yield server
