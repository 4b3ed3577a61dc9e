"""`make demo`: continuous training as new spans arrive.

Prepares the spans, lets the first N "arrive" in the data folder, runs the pipeline, then lets
the next span arrive and runs again; after each run it prints what was trained, evaluated and
pushed. Re-running the demo resets the arrivals and shows the cached re-runs.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ctpipe import data, serving_demo, status
from pipeline.config import PipelineConfig, local_config
from pipeline.local_runner import ComponentEvent, RunFailed, run_local


def _print_event(event: ComponentEvent) -> None:
    if event.state != "running":
        print(f"    {event.component:<32} {event.state:<9} {event.seconds:6.1f} s", flush=True)


def _evaluation_summary(workspace: Path) -> str:
    """Overall AUC of the candidate and, when there was one, of the baseline."""
    import tensorflow_model_analysis as tfma

    store = status.open_store(workspace)
    evaluations = store.get_artifacts_by_type("ModelEvaluation")
    if not evaluations:
        return "no evaluation"
    newest = max(evaluations, key=lambda a: a.id)
    parts = []
    for result in tfma.load_metrics(newest.uri):
        if result.slice_key.single_slice_keys:
            continue
        for key_and_value in result.metric_keys_and_values:
            key, value = key_and_value.key, key_and_value.value.double_value.value
            if key.name != "auc":
                continue
            if key.is_diff:  # TFMA's change against the baseline, used by the change threshold
                parts.append(f"change {value:+.4f}")
            else:
                who = "baseline" if key.model_name == "baseline" else "candidate"
                parts.append(f"{who} AUC {value:.4f}")
    return ", ".join(sorted(parts, key=_candidate_first)) or "no AUC recorded"


def _candidate_first(part: str) -> int:
    return ("candidate", "baseline", "change").index(part.split()[0])


def _run(config: PipelineConfig, workspace: Path, title: str) -> None:
    print(f"\n== {title}", flush=True)
    try:
        run_local(config, workspace, report=_print_event)
    except RunFailed as err:
        print(f"   run failed: {err}")
        raise
    print(f"   {status.format_latest_run(workspace)}")
    print(f"   evaluation: {_evaluation_summary(workspace)}")


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
    config = local_config(workspace, arrivals).replace(train_steps=train_steps)
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

