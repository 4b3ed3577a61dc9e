"""`make bench`: the pipeline against its peer, then serving (bench/serving.py), the gateway
(bench/gateway.py), offline scoring (bench/scoring.py), the Trainer (bench/trainer.py),
`ctpipe monitor` (bench/monitor.py), the per-task start-up cost in the pipeline image
(bench/container_startup.py, which builds the image first), the compiled pipeline under kfp.local
against LocalDagRunner (bench/kfp_local.py), what re-runs on open-source KFP when no new data
came (bench/kfp_cache.py) and incremental training as spans accumulate
(bench/incremental.py, the longest: about 10 minutes); every figure is printed and written to one
JSON file.

Pipeline: our full local run vs. TFX's taxi_pipeline_native_keras (the peer).

Both train on the same 90 % of the taxi trips, in fresh workspaces, with LocalDagRunner and the
same Beam arguments, each in a fresh interpreter (import time included). Both models then score
the same held-out 10 % of trips, which neither saw; we report wall times, their ratio and AUCs.
"""
from __future__ import annotations
import argparse
import csv
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

from bench import report

REPO = Path(__file__).resolve().parent.parent


def _split_source(source: Path, out_dir: Path) -> tuple[Path, list[dict[str, str]]]:
    """Writes the training 90 % as out_dir/train/data.csv; returns it and the held-out rows."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    # Stable hash of the whole row: the same trips are held out on every machine.
    held_out = [r for r in rows if zlib.crc32(",".join(r.values()).encode()) % 10 == 0]
    kept = [r for r in rows if zlib.crc32(",".join(r.values()).encode()) % 10 != 0]
    train_csv = out_dir / "train" / "data.csv"
    train_csv.parent.mkdir(parents=True)
    with train_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return train_csv, held_out


def _timed(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(command)}; "
                         f"see {log}")
    return time.perf_counter() - start


def _held_out_auc(model_dir: Path, rows: list[dict[str, str]]) -> float:
    """AUC of a SavedModel's serving_default on raw rows sent as tf.Examples: every column of
    the trips file but the label and tips, typed as the curated schema types them (the peer's
    model parses them all; ours reads its features among them)."""
    import numpy as np
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from models import features
    from serving.client.examples import row_to_example

    schema = text_format.Parse((REPO / "schemas" / "schema.pbtxt").read_text(),
                               schema_pb2.Schema())
    dtypes = {schema_pb2.INT: "int64", schema_pb2.FLOAT: "float32", schema_pb2.BYTES: "string"}
    columns = [(f.name, dtypes[f.type]) for f in schema.feature
               if f.name not in (features.LABEL, features.TIPS)]
    serialized = [row_to_example(row, f"held-out trip {index + 1}", empty_lists=True,
                                 columns=columns) for index, row in enumerate(rows)]
    labels = np.array([features.is_big_tipper(float(r["tips"]), float(r["fare"])) for r in rows])
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    input_name = list(signature.structured_input_signature[1])[0]
    outputs = signature(**{input_name: tf.constant(serialized)})
    scores = np.reshape(next(iter(outputs.values())).numpy(), [-1])
    auc = tf.keras.metrics.AUC(num_thresholds=2000)
    auc.update_state(labels, scores)
    return float(auc.result().numpy())


def _newest(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no {pattern} under {root}")
    return found[-1]


def bench_pipeline(work: Path) -> dict[str, float]:
    from dataprep import spans as data
    from pipeline.config import LOCAL_BEAM_ARGS

    train_csv, held_out = _split_source(data.bundled_source(), work)
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
        "pipeline_held_out_auc": round(_held_out_auc(our_model, held_out), 4),
        "peer_held_out_auc": round(_held_out_auc(peer_model, held_out), 4),
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
    from bench.serving import bench_serving

    pushed = _newest("*/saved_model.pb", work / "ours" / "serving" / "big_tipper").parent
    results.update(bench_serving(work / "serving", model=pushed))
    from bench.gateway import bench_gateway
    from bench.scoring import bench_scoring

    results.update(bench_gateway(work / "gateway", model=pushed))
    results.update(bench_scoring(work / "scoring", model=pushed))
    from bench.trainer import bench_trainer

    results.update(bench_trainer(work / "trainer"))
    from bench.monitor import bench_monitor

    results.update(bench_monitor(work / "monitor"))
    from bench.container_startup import bench_container_startup

    results.update(bench_container_startup(work / "container-startup"))
    from bench.kfp_local import bench_kfp_local

    results.update(bench_kfp_local(work / "kfp-local"))
    from bench.kfp_cache import bench_kfp_cache

    results.update(bench_kfp_cache(work / "kfp-cache"))
    from bench.incremental import bench_incremental

    results.update(bench_incremental(work / "incremental"))
    report(results, args.out)


if __name__ == "__main__":
    main()
