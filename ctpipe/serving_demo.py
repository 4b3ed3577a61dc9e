"""The serving part of `make demo`: `ctpipe serve` on the workspace's serving folder, queried
with `ctpipe predict` while the next run pushes a new version (no server restart)."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from pipeline.config import PipelineConfig

SAMPLE_ROWS = 3


def _versions(model_dir: Path) -> list[int]:
    from serving import layout

    return sorted(layout.version_folders(str(model_dir))) if model_dir.is_dir() else []


def write_sample(span_csv: Path, target: Path, rows: int = SAMPLE_ROWS) -> Path:
    """The first trips of a span file (all raw columns; the client keeps the features)."""
    with span_csv.open() as source:
        lines = [line for _, line in zip(range(rows + 1), source)]
    target.write_text("".join(lines))
    return target


class DemoServer:
    """A running `ctpipe serve` and the `ctpipe predict` command line that queries it."""

    def __init__(self, target: str, config: PipelineConfig, sample: Path):
        self.target = target
        self.config = config
        self.sample = sample

    def predict(self) -> None:
        """Runs `ctpipe predict` as a user would and prints its answer (with the version)."""
        command = [sys.executable, "-m", "ctpipe.cli", "predict", "--server", self.target,
                   "--model", self.config.model_name, "--csv", str(self.sample)]
        print(f"   $ ctpipe predict --server {self.target} --model {self.config.model_name} "
              f"--csv {self.sample.name}", flush=True)
        answer = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        print("".join(f"     {line}\n" for line in answer.stdout.splitlines()), end="", flush=True)

    def available_version(self) -> int:
        from serving.client.grpc_client import PredictionClient

        with PredictionClient(self.target, self.config.model_name) as client:
            available = [s.version for s in client.model_status() if s.state == "AVAILABLE"]
        return max(available, default=0)

    def show_new_version(self, before: int, wait_seconds: float = 60.0) -> None:
        """After a run, waits for the server to load the newly pushed version, queries again."""
        newest = _versions(Path(self.config.serving_model_dir))[-1]
        if newest == before:
            print(f"   no new version was pushed; the server keeps serving {before}")
            return
        started = time.monotonic()
        while self.available_version() != newest:
            if time.monotonic() - started > wait_seconds:
                raise RuntimeError(f"the server did not load version {newest} "
                                   f"within {wait_seconds:.0f} s")
            time.sleep(0.5)
        print(f"   version {newest} was pushed; the running server switched to it without a "
              f"restart ({time.monotonic() - started:.1f} s after the run ended):", flush=True)
        self.predict()


@contextlib.contextmanager
def serving(config: PipelineConfig, workspace: Path,
            sample_source: Path) -> Iterator[DemoServer | None]:
    """Starts `ctpipe serve` on the pushed models; yields None when nothing was pushed yet."""
    from serving.server.process import running_server

    model_dir = Path(config.serving_model_dir)
    if not _versions(model_dir):
        print("\n== no model pushed yet: serving skipped")
        yield None
        return
    print(f"\n== serving {model_dir} with `ctpipe serve` (gRPC, polls for new versions)",
          flush=True)
    sample = write_sample(sample_source, workspace / "predict-sample.csv")
    with running_server(config.model_name, model_dir, log_dir=workspace) as server:
        demo_server = DemoServer(server.target, config, sample)
        demo_server.predict()
        yield demo_server
        print(f"   stopping the server (log: {server.log_path})", flush=True)
