"""Real-size spans: ingestion and profiling speed, and what a run costs as spans arrive.

Three parts, each printed as it finishes (`python -m bench.scale --part ingest|runs|peer|budget`):
- ingest: ExampleGen's and StatisticsGen's executors on one span of 50 k, 500 k and 2 M trips
  (a fresh interpreter each; trips/s of both steps together, and the child's peak RSS);
- runs: 16 spans of 500 k trips made from 90 % of the shipped trips. A full `ctpipe run` on
  spans 1-15 (catch-up included), then span 16 arrives and a copy of that workspace runs once
  per training policy: wall time, workspace growth, held-out AUC on the other 10 %;
- peer: the same 16 spans at 50 k trips through TFX's taxi example (bench/peer_run.py) and
  through a full `ctpipe run`: wall-time ratio and held-out AUC;
- budget: after `runs`, the Trainer's training function alone on that run's window under fixed
  budgets (steps x batch size), each model's held-out AUC: what the replicated spans do to a
  budget of whole passes.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pa_csv

from bench import RESULTS_DIR, machine, report
from bench.incremental import arrive
from bench.trips import held_out_auc, served_model, split_source
from ctpipe.common import features
from ctpipe.common.window import WindowManifest
from ctpipe.dataprep import scale, spans
from ctpipe.models.export import export_serving_model
from ctpipe.models.options import HParams, WarmStartOptions
from ctpipe.models.training import train
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS

REPO = Path(__file__).resolve().parent.parent
INGEST_SIZES = (50_000, 500_000, 2_000_000)
RUN_SPAN_TRIPS = 500_000
PEER_SPAN_TRIPS = 50_000

# The child that times one span's ingestion and profiling with the real executors.
_INGEST_CHILD = """
import json, sys, time
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from ctpipe.components.example_gen.component import input_config
from ctpipe.components.example_gen.executor import Executor as ExampleGen
from ctpipe.components.statistics_gen.executor import Executor as StatisticsGen
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS
data, work = sys.argv[1], sys.argv[2]
def context(cls, name):
    return cls.Context(beam_pipeline_args=list(LOCAL_BEAM_ARGS), tmp_dir=f"{work}/{name}-tmp",
                       unique_id="1")
examples = standard_artifacts.Examples(); examples.uri = f"{work}/examples"
statistics = standard_artifacts.ExampleStatistics(); statistics.uri = f"{work}/statistics"
start = time.perf_counter()
ExampleGen(context(ExampleGen, "eg")).Do({}, {"examples": [examples]}, {
    "input_base": data, "input_config": proto_utils.proto_to_json(input_config("csv")),
    "requested_span": 1, "file_format": "csv"})
middle = time.perf_counter()
StatisticsGen(context(StatisticsGen, "sg")).Do({"examples": [examples]},
                                               {"statistics": [statistics]}, {})
end = time.perf_counter()
print(json.dumps({"example_gen_s": middle - start, "statistics_gen_s": end - middle}))
"""


def _one_span(out: Path, trips: int, source: Path) -> Path:
    """`out/span-1/data.csv`: `trips` trips repeated from the shipped data's 2015-Q1."""
    header, rows = spans.read_source(source)
    quarter_rows = dict(spans.split_into_spans(rows))["2015-Q1"]
    (out / "span-1").mkdir(parents=True)
    scale.write_span(quarter_rows, header + ["big_tipper"], trips, 1, out / "span-1" / "data.csv")
    return out


def bench_ingest(work: Path) -> dict[str, float]:
    results = {}
    for trips in INGEST_SIZES:
        folder = work / f"ingest-{trips}"
        data = _one_span(folder / "data", trips, spans.bundled_source())
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        child = subprocess.run([sys.executable, "-c", _INGEST_CHILD, str(data), str(folder)],
                               capture_output=True, text=True, cwd=REPO, check=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        times = json.loads(child.stdout.strip().splitlines()[-1])
        both = times["example_gen_s"] + times["statistics_gen_s"]
        label = f"{trips // 1000}k"
        results.update({
            f"ingest_{label}_example_gen_s": round(times["example_gen_s"], 1),
            f"ingest_{label}_statistics_gen_s": round(times["statistics_gen_s"], 1),
            f"ingest_{label}_trips_per_s": round(trips / both),
            # ru_maxrss of children is the largest child so far: a growing series is exact.
            f"ingest_{label}_peak_rss_mb": round(max(peak, before) / 1024),
        })
        print({k: v for k, v in results.items() if label in k}, flush=True)
        shutil.rmtree(folder)
    return results


def _ctpipe(args: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run([str(Path(sys.executable).parent / "ctpipe"), *args], stdout=out,
                       stderr=subprocess.STDOUT, cwd=REPO, check=True)
    return time.perf_counter() - start


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _prepared(work: Path, span_trips: int) -> tuple[Path, list[dict[str, str]]]:
    """16 spans of `span_trips` trips from 90 % of the shipped trips; the other 10 % held out."""
    train_csv, held_out = split_source(spans.bundled_source(), work)
    spans.prepare(work / "all", train_csv, span_trips=span_trips)
    return work / "all", held_out


def bench_runs(work: Path) -> dict[str, float]:
    all_spans, held_out = _prepared(work, RUN_SPAN_TRIPS)
    data, first = work / "data", work / "full"
    arrive(all_spans, data, 15, link=True)
    full = _ctpipe(["run", "--data", str(data), "--workspace", str(first)], work / "full.log")
    results = {"runs_span_trips": RUN_SPAN_TRIPS, "runs_full_run_15_spans_s": round(full),
               "runs_full_run_workspace_mb": round(_size(first) / 1e6),
               "runs_full_run_held_out_auc": round(held_out_auc(served_model(first),
                                                                held_out), 4)}
    print(results, flush=True)
    arrive(all_spans, data, 16, link=True)
    for policy in ("full", "incremental"):
        workspace = work / f"after-{policy}"
        shutil.copytree(first, workspace, symlinks=True)
        settings = work / f"{policy}.yaml"
        settings.write_text(f"trainer: {{training: {policy}}}\n")
        seconds = _ctpipe(["run", "--data", str(data), "--workspace", str(workspace),
                           "--config", str(settings)], work / f"after-{policy}.log")
        grown = _size(workspace) - _size(first)
        results.update({
            f"runs_after_new_span_{policy}_s": round(seconds),
            f"runs_after_new_span_{policy}_to_full_ratio": round(seconds / full, 3),
            f"runs_after_new_span_{policy}_workspace_growth_pct": round(
                100 * grown / _size(first), 1),
            f"runs_after_new_span_{policy}_held_out_auc": round(
                held_out_auc(served_model(workspace), held_out), 4)})
        print({k: v for k, v in results.items() if policy in k}, flush=True)
    return results


def bench_peer(work: Path) -> dict[str, float]:
    all_spans, held_out = _prepared(work, PEER_SPAN_TRIPS)
    # The peer reads one CSV of the raw trips: its serving signature parses every column of
    # its training file, so the label column our spans carry is left out.
    peer_data = work / "peer-data"
    peer_data.mkdir()

    with (peer_data / "data.csv").open("wb") as combined:
        for index, span in enumerate(sorted(all_spans.glob("span-*/data.csv"))):
            table = pa_csv.read_csv(span).drop([features.LABEL])
            if not index:
                combined.write((",".join(table.schema.names) + "\n").encode())
            pa_csv.write_csv(table, combined,
                             write_options=pa_csv.WriteOptions(include_header=False))
    ours = _ctpipe(["run", "--data", str(all_spans), "--workspace", str(work / "ours")],
                   work / "ours.log")
    start = time.perf_counter()
    with (work / "peer.log").open("w") as out:
        subprocess.run([sys.executable, "-m", "bench.peer_run", str(peer_data),
                        str(work / "peer"), *LOCAL_BEAM_ARGS], stdout=out,
                       stderr=subprocess.STDOUT, cwd=REPO, check=True)
    peer = time.perf_counter() - start
    peer_model = sorted((work / "peer" / "pipeline_root").glob(
        "Trainer/model/*/Format-Serving"))[-1]
    results = {"peer_trips": PEER_SPAN_TRIPS * 16, "peer_ours_full_run_s": round(ours),
               "peer_taxi_example_s": round(peer), "peer_wall_ratio": round(ours / peer, 3),
               "peer_ours_held_out_auc": round(held_out_auc(served_model(work / "ours"),
                                                            held_out), 4),
               "peer_taxi_example_held_out_auc": round(held_out_auc(peer_model, held_out), 4)}
    print(results, flush=True)
    return results


BUDGETS = ((128, 600), (1024, 5_860), (4_096, 1_465))  # (batch, steps): 600 steps, 1 pass, 1 pass


def bench_budget(work: Path) -> dict[str, float]:
    manifests = sorted((work.parent / "runs" / "full").glob(
        "pipeline_root/SpanWindow/window_examples/*/window.json"))
    if not manifests:
        raise SystemExit("bench.scale --part budget needs the window of --part runs first")
    window = WindowManifest.from_json(manifests[-1].read_text())
    _, held_out = split_source(spans.bundled_source(), work)
    results = {"budget_window_training_examples": window.rows["train"]}
    for batch, steps in BUDGETS:
        trained = train(window.files("train"), window.files("eval"), train_steps=steps,
                        eval_steps=20, hparams=HParams(batch_size=batch),
                        steps_per_epoch=max(100, steps // 10),
                        warm_start=WarmStartOptions(mode="off"))
        model = work / f"model-{batch}-{steps}"
        export_serving_model(trained.model, str(model))
        results[f"budget_batch_{batch}_steps_{steps}_held_out_auc"] = round(
            held_out_auc(model, held_out), 4)
        print({k: v for k, v in results.items() if f"_{batch}_" in k}, flush=True)
    return results


PARTS = {"ingest": bench_ingest, "runs": bench_runs, "peer": bench_peer, "budget": bench_budget}


def bench_scale(work: Path, parts: tuple[str, ...] = tuple(PARTS)) -> dict[str, float]:
    results = {}
    for part in parts:
        folder = work / part
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        results.update(PARTS[part](folder))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="build/bench-scale", help="scratch folder")
    parser.add_argument("--part", choices=tuple(PARTS), action="append",
                        help="run only these parts (default: all)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "scale.json"),
                        help="figures written here as JSON")
    args = parser.parse_args()
    started = machine()
    report("scale", bench_scale(Path(args.work).resolve(), tuple(args.part or PARTS)), args.out,
           started)


if __name__ == "__main__":
    main()
