"""`ctpipe demo` (`make demo`): continuous training as new spans arrive.

Prepares the spans, lets the first N "arrive" in the data folder, runs the pipeline, then lets
the next span arrive and runs again; after each run it prints what was trained, evaluated and
pushed. Between the runs `ctpipe serve` serves the workspace's serving folder and is queried
with `ctpipe predict` while the next run pushes a new version (no server restart). Re-running
the demo resets the arrivals and shows the cached re-runs.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ctpipe.commands.run import print_event
from ctpipe.common.errors import UserError

if TYPE_CHECKING:  # the pipeline's modules load when the demo runs, not with `ctpipe --help`
    from ctpipe.pipeline.config import PipelineConfig

SAMPLE_ROWS = 3


def _versions(model_dir: Path) -> list[int]:
    from ctpipe.common import layout

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
        from ctpipe.serving.client.grpc_client import PredictionClient

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
def _serving(config: PipelineConfig, workspace: Path,
             sample_source: Path) -> Iterator[DemoServer | None]:
    """Starts `ctpipe serve` on the pushed models; yields None when nothing was pushed yet."""
    from ctpipe.program import program
    from ctpipe.serving.server.process import running_server

    model_dir = Path(config.serving_model_dir)
    if not _versions(model_dir):
        print("\n== no model pushed yet: serving skipped")
        yield None
        return
    print(f"\n== serving {model_dir} with `ctpipe serve` (gRPC, polls for new versions)",
          flush=True)
    sample = write_sample(sample_source, workspace / "predict-sample.csv")
    with running_server(program("serve"), config.model_name, model_dir, log_dir=workspace) as server:
        demo_server = DemoServer(server.target, config, sample)
        demo_server.predict()
        yield demo_server
        print(f"   stopping the server (log: {server.log_path})", flush=True)


def _run(config: PipelineConfig, workspace: Path, title: str) -> None:
    from ctpipe.pipeline.local_runner import run_local
    from ctpipe.reporting import status

    print(f"\n== {title}", flush=True)
    run_local(config, workspace, report=print_event)
    print(f"   {status.format_latest_run(workspace)}")


def run_demo(workspace: Path, initial_spans: int = 15, train_steps: int | None = None) -> None:
    from ctpipe.dataprep import spans as data
    from ctpipe.pipeline.config import local_config
    from ctpipe.reporting import status

    # Checked before anything is written: one span must be left to arrive.
    quarters = len(data.split_into_spans(data.read_source(data.bundled_source())[1]))
    if not 1 <= initial_spans < quarters:
        raise UserError(f"--initial-spans must be within 1..{quarters - 1} (the shipped trips "
                        f"cover {quarters} quarters), got {initial_spans}")
    workspace = workspace.resolve()
    all_spans = workspace / "all-spans"
    arrivals = workspace / "data"
    config = local_config(workspace, arrivals,
                          {} if train_steps is None else {"train_steps": train_steps})
    spans = data.prepare(all_spans)
    print(f"{len(spans)} quarterly spans prepared in {all_spans}")

    shutil.rmtree(arrivals, ignore_errors=True)
    arrivals.mkdir(parents=True)
    for span in spans[:initial_spans]:
        shutil.copytree(all_spans / f"span-{span.number}", arrivals / f"span-{span.number}")
    _run(config, workspace,
         f"spans 1-{initial_spans} available ({spans[initial_spans - 1].quarter}): first run")

    arriving = spans[initial_spans]
    arriving_folder = all_spans / f"span-{arriving.number}"
    with _serving(config, workspace, next(arriving_folder.glob("*.csv"))) as server:
        served = server.available_version() if server else 0
        shutil.copytree(arriving_folder, arrivals / f"span-{arriving.number}")
        _run(config, workspace, f"span {arriving.number} ({arriving.quarter}, "
                                f"{arriving.rows} trips) arrived: continuous training")
        if server:
            server.show_new_version(served)

    print("\n" + status.format_status(workspace, limit=4))
    print(f"\nServing layout: {config.serving_model_dir}/<version>/saved_model.pb")


def _cmd_demo(args: argparse.Namespace) -> None:
    run_demo(Path(args.workspace), initial_spans=args.initial_spans, train_steps=args.train_steps)


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="continuous training on arriving spans")
    demo.add_argument("--workspace", required=True)
    demo.add_argument("--initial-spans", type=int, default=15)
    demo.add_argument("--train-steps", type=int, default=None)
    demo.set_defaults(handler=_cmd_demo)
