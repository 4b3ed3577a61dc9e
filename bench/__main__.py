"""`make bench`: the pipeline against its peer, then serving (bench/serving.py), the gateway
(bench/gateway.py), the rollout analysis replayed (bench/rollout.py), calibrated drift on the
real quarters (bench/drift_calibrated.py), offline scoring (bench/scoring.py), the Trainer (bench/trainer.py),
`ctpipe monitor` (bench/monitor.py), the per-task start-up cost in the pipeline image
(bench/container_startup.py, which builds the image first), the compiled pipeline under kfp.local
against LocalDagRunner (bench/kfp_local.py), what re-runs on open-source KFP when no new data
came (bench/kfp_cache.py), incremental training as spans accumulate (bench/incremental.py,
about 10 minutes) and spans of real size (bench/scale.py, the longest: about 40 minutes); every
figure is printed and written to one JSON file.

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

from bench import report
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
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--work", default="build/bench", help="scratch folder (recreated)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    results = bench_pipeline(work)

    pushed = _newest("*/saved_model.pb", work / "ours" / "serving" / "big_tipper").parent
    results.update(bench_serving(work / "serving", model=pushed))

    results.update(bench_gateway(work / "gateway", model=pushed))

    results.update(bench_rollout())

    results.update(bench_drift_calibrated())
    results.update(bench_scoring(work / "scoring", model=pushed))

    results.update(bench_trainer(work / "trainer"))

    results.update(bench_monitor(work / "monitor"))

    results.update(bench_container_startup(work / "container-startup"))

    results.update(bench_kfp_local(work / "kfp-local"))

    results.update(bench_kfp_cache(work / "kfp-cache"))

    results.update(bench_incremental(work / "incremental"))

    results.update(bench_scale(work / "scale"))
    report(results, args.out)


if __name__ == "__main__":
    main()
