"""`make demo`: continuous training as new spans arrive.

Prepares the spans, lets the first N "arrive" in the data folder, runs the pipeline, then lets
the next span arrive and runs again; after each run it prints what was trained, evaluated and
pushed. Re-running the demo resets the arrivals and shows the cached re-runs.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ctpipe import serving_demo, status
from dataprep import spans as data
from pipeline.config import PipelineConfig, local_config
from pipeline.local_runner import ComponentEvent, format_event, run_local


def _print_event(event: ComponentEvent) -> None:
    print(format_event(event), flush=True)


def _run(config: PipelineConfig, workspace: Path, title: str) -> None:
    print(f"\n== {title}", flush=True)
    run_local(config, workspace, report=_print_event)
    print(f"   {status.format_latest_run(workspace)}")


def run_demo(workspace: Path, initial_spans: int = 15, train_steps: int | None = None) -> None:
    workspace = workspace.resolve()
    all_spans = workspace / "all-spans"
    arrivals = workspace / "data"
    spans = data.prepare(all_spans)
    if not 1 <= initial_spans < len(spans):
        raise ValueError(f"--initial-spans must be within 1..{len(spans) - 1}")
    print(f"{len(spans)} quarterly spans prepared in {all_spans}")

    shutil.rmtree(arrivals, ignore_errors=True)
    arrivals.mkdir(parents=True)
    config = local_config(workspace, arrivals, {"train_steps": train_steps} if train_steps else {})
    for span in spans[:initial_spans]:
        shutil.copytree(all_spans / f"span-{span.number}", arrivals / f"span-{span.number}")
    _run(config, workspace,
         f"spans 1-{initial_spans} available ({spans[initial_spans - 1].quarter}): first run")

    arriving = spans[initial_spans]
    arriving_folder = all_spans / f"span-{arriving.number}"
    with serving_demo.serving(config, workspace, next(arriving_folder.glob("*.csv"))) as server:
        served = server.available_version() if server else 0
        shutil.copytree(arriving_folder, arrivals / f"span-{arriving.number}")
        _run(config, workspace, f"span {arriving.number} ({arriving.quarter}, "
                                f"{arriving.rows} trips) arrived: continuous training")
        if server:
            server.show_new_version(served)

    print("\n" + status.format_status(workspace, limit=4))
    print(f"\nServing layout: {config.serving_model_dir}/<version>/saved_model.pb")

