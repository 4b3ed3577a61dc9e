"""Incremental continuous training: what a run costs when one span arrives, as the history grows.

The taxi trips minus a held-out 10 % (bench/__main__.py's stable hash) become 16 quarterly spans;
for the scaling curve they are replicated to 64 spans (spans 17-64 repeat 1-16 with new span
numbers and timestamps shifted by whole years). For each training policy (`full`,
`incremental`) one workspace grows span by span: a catch-up run takes the spans up to N-1, then
span N arrives and that run is timed. A fresh workspace's first run on all spans is the "full
run" the issue compares with. Times are the pipeline's wall time in this process (imports paid
once before), so they measure the pipeline, not interpreter start-up. Each timed run also gives
the share of its wall time spent in the steps that check drift and concept drift.

    python -m bench.incremental [--work build/bench-incremental] [--out build/bench/incremental.json]
"""
from __future__ import annotations

import csv
import logging
import shutil
import time
from pathlib import Path

from bench import arguments, machine, report
from bench.trips import held_out_auc, served_model, split_source
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import local_config
from ctpipe.pipeline.local_runner import run_local

POINTS = (16, 32, 48, 64)
QUARTERS = 16
SECONDS_PER_YEAR = 365 * 24 * 3600


def replicate_spans(spans: Path, count: int) -> None:
    """Spans QUARTERS+1..count: copies of 1..QUARTERS, timestamps shifted by 4 years per
    repetition (the months and weekdays of a shifted trip are kept as recorded)."""
    for number in range(QUARTERS + 1, count + 1):
        source = spans / f"span-{(number - 1) % QUARTERS + 1}" / "data.csv"
        shift = 4 * SECONDS_PER_YEAR * ((number - 1) // QUARTERS)
        with source.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames, list(reader)
        for row in rows:
            row["trip_start_timestamp"] = str(int(row["trip_start_timestamp"]) + shift)
        target = spans / f"span-{number}" / "data.csv"
        target.parent.mkdir(parents=True)
        with target.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def arrive(all_spans: Path, data: Path, upto: int, link: bool = False) -> None:
    """Spans 1..upto of `all_spans` copied (or, with `link`, symbolically linked: spans of
    real size) into `data`, those not there yet."""
    data.mkdir(parents=True, exist_ok=True)
    for number in range(1, upto + 1):
        target = data / f"span-{number}"
        if target.exists():
            continue
        if link:
            target.symlink_to(all_spans / f"span-{number}")
        else:
            shutil.copytree(all_spans / f"span-{number}", target)


# The steps the drift checks run in: the ValidationGate (its anomaly check is a file read; the
# rest is the drift comparison) and ConceptDrift. Their whole time bounds what drift adds.
DRIFT_STEPS = ("ValidationGate", "ConceptDrift")


def _timed_run(workspace: Path, data: Path, training: str) -> tuple[float, float]:
    """The run's wall time and the drift steps' share of it; prints each executed step's time
    (where it goes)."""
    config = local_config(workspace, data, {"trainer": {"training": training}})
    start = time.perf_counter()
    events = run_local(config, workspace)
    seconds = time.perf_counter() - start
    steps = ", ".join(f"{e.component} {e.seconds:.1f}" for e in events if e.state == "executed")
    print(f"    {seconds:.1f} s: {steps}", flush=True)
    drift = sum(e.seconds for e in events if e.state == "executed" and e.component in DRIFT_STEPS)
    return seconds, drift


def bench_incremental(work: Path, points: tuple[int, ...] = POINTS) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    train_csv, held_out = split_source(data.bundled_source(), work)
    all_spans = work / "spans"
    data.prepare(all_spans, train_csv)
    replicate_spans(all_spans, max(points))
    results: dict[str, float] = {}
    for training in ("full", "incremental"):
        workspace, incoming = work / f"ws-{training}", work / f"data-{training}"
        for point in points:
            arrive(all_spans, incoming, point - 1)
            _timed_run(workspace, incoming, training)  # catch up to span point-1
            arrive(all_spans, incoming, point)
            seconds, drift = _timed_run(workspace, incoming, training)
            results[f"{training}_after_one_new_span_at_{point}_spans_s"] = round(seconds, 1)
            results[f"{training}_drift_steps_share_at_{point}_spans_pct"] = round(
                100 * drift / seconds, 1)
            results[f"{training}_held_out_auc_at_{point}_spans"] = round(
                held_out_auc(served_model(workspace), held_out), 4)
            print(f"  {training:<11} span {point} arrived: {seconds:6.1f} s", flush=True)
    for point in sorted({points[0], points[-1]}):
        incoming = work / f"data-fresh-{point}"
        arrive(all_spans, incoming, point)
        seconds, _ = _timed_run(work / f"ws-fresh-{point}", incoming, "full")
        results[f"full_run_fresh_workspace_{point}_spans_s"] = round(seconds, 1)
    first, last = points[0], points[-1]
    for training in ("full", "incremental"):
        after = results[f"{training}_after_one_new_span_at_{last}_spans_s"]
        results[f"{training}_after_one_span_to_full_run_ratio_at_{first}"] = round(
            results[f"{training}_after_one_new_span_at_{first}_spans_s"]
            / results[f"full_run_fresh_workspace_{first}_spans_s"], 3)
        results[f"{training}_after_one_span_to_full_run_ratio_at_{last}"] = round(
            after / results[f"full_run_fresh_workspace_{last}_spans_s"], 3)
        results[f"{training}_after_one_span_{last}_vs_{first}_spans_change_pct"] = round(
            100 * (after / results[f"{training}_after_one_new_span_at_{first}_spans_s"] - 1), 1)
    results[f"incremental_minus_full_held_out_auc_at_{first}"] = round(
        results[f"incremental_held_out_auc_at_{first}_spans"]
        - results[f"full_held_out_auc_at_{first}_spans"], 4)
    results["held_out_trips_count"] = len(held_out)
    return results


def main() -> None:
    parser = arguments(__doc__, "build/bench-incremental", "incremental")
    parser.add_argument("--points", default=",".join(map(str, POINTS)),
                        help="span counts at which a new span's run is timed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    points = tuple(int(p) for p in args.points.split(","))
    started = machine()
    report("incremental", bench_incremental(Path(args.work).resolve(), points), args.out, started)


if __name__ == "__main__":
    main()
