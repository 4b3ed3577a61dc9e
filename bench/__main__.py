"""`make bench`: the pipeline against its peer, then serving (bench/serving.py), the gateway
(bench/gateway.py), the rollout analysis replayed (bench/rollout.py), calibrated drift on the
real quarters (bench/drift_calibrated.py), offline scoring (bench/scoring.py), the Trainer (bench/trainer.py),
`ctpipe monitor` (bench/monitor.py), the per-task start-up cost in the pipeline image
(bench/container_startup.py, which builds the image first), the compiled pipeline under kfp.local
against LocalDagRunner (bench/kfp_local.py), what re-runs on open-source KFP when no new data
came (bench/kfp_cache.py), incremental training as spans accumulate (bench/incremental.py,
about 10 minutes) and spans of real size (bench/scale.py, the longest: about 40 minutes); every
figure is printed, written to build/bench/results.json and into docs/performance.md.

Pipeline: our full local run vs. TFX's taxi_pipeline_native_keras (the peer).

Both train on the same 90 % of the taxi trips, in fresh workspaces, with LocalDagRunner and the
same Beam arguments, each in a fresh interpreter (import time included). Both models then score
the same held-out 10 % of trips, which neither saw; we report wall times, their ratio and AUCs.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import (
    RESULTS_DIR,
    machine,
    now,
    performance,
    print_figures,
    record,
    write_results,
)
from bench.container_startup import bench_container_startup
from bench.drift_calibrated import bench_drift_calibrated
from bench.gateway import bench_gateway
from bench.incremental import bench_incremental
from bench.kfp_cache import bench_kfp_cache
from bench.kfp_local import bench_kfp_local
from bench.monitor import bench_monitor
from bench.rollout import bench_rollout
from bench.scale import bench_scale
from bench.scoring import bench_scoring
from bench.serving import bench_serving
from bench.trainer import bench_trainer
from bench.trips import held_out_auc, split_source
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS

REPO = Path(__file__).resolve().parent.parent


def _timed(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(command)}; "
                         f"see {log}")
    return time.perf_counter() - start


def _newest(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no {pattern} under {root}")
    return found[-1]


def bench_pipeline(work: Path) -> dict[str, float]:
    train_csv, held_out = split_source(data.bundled_source(), work)
    spans = work / "spans"
    data.prepare(spans, train_csv)
    bin_dir = Path(sys.executable).parent

    ours = _timed([str(bin_dir / "ctpipe"), "run", "--data", str(spans), "--workspace",
                   str(work / "ours")], work / "ours.log")
    peer = _timed([sys.executable, "-m", "bench.peer_run", str(train_csv.parent),
                   str(work / "peer"), *LOCAL_BEAM_ARGS], work / "peer.log")
    our_model = _newest("*/saved_model.pb", work / "ours" / "serving" / "big_tipper").parent
    peer_model = _newest("Trainer/model/*/Format-Serving", work / "peer" / "pipeline_root")
    return {
        "pipeline_full_run_wall_s": round(ours, 1),
        "peer_full_run_wall_s": round(peer, 1),
        "pipeline_to_peer_wall_ratio": round(ours / peer, 3),
        "held_out_trips_count": len(held_out),
        "pipeline_held_out_auc": round(held_out_auc(our_model, held_out), 4),
        "peer_held_out_auc": round(held_out_auc(peer_model, held_out), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR / "results.json"))
    parser.add_argument("--work", default=str(RESULTS_DIR / "work"),
                        help="scratch folder (recreated)")
    parser.add_argument("--page", type=Path, default=performance.PAGE,
                        help="the figures page every measured section is replaced in")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started, started_at = machine(), now()
    sections = {"pipeline": bench_pipeline(work)}

    pushed = _newest("*/saved_model.pb", work / "ours" / "serving" / "big_tipper").parent
    sections["serving"] = bench_serving(work / "serving", model=pushed)
    sections["gateway"] = bench_gateway(work / "gateway", model=pushed)
    sections["rollout"] = bench_rollout()
    sections["drift_calibrated"] = bench_drift_calibrated()
    sections["scoring"] = bench_scoring(work / "scoring", model=pushed)
    sections["trainer"] = bench_trainer(work / "trainer")
    sections["monitor"] = bench_monitor(work / "monitor")
    sections["container_startup"] = bench_container_startup(work / "container-startup")
    sections["kfp_local"] = bench_kfp_local(work / "kfp-local")
    sections["kfp_cache"] = bench_kfp_cache(work / "kfp-cache")
    sections["incremental"] = bench_incremental(work / "incremental")
    sections["scale"] = bench_scale(work / "scale")

    for name, figures in sections.items():
        print(f"[{name}]")
        print_figures(figures)
    write_results({name: record(figures, started, started_at) for name, figures in sections.items()},
                  args.out)
    performance.update(args.page, [Path(args.out)])
    print(f"{args.page}: every section replaced")


if __name__ == "__main__":
    main()
