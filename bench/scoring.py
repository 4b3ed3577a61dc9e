"""Offline scoring benchmark: `ctpipe score`'s job (ctpipe.scoring.publish.score, Beam DirectRunner)
on the taxi trips repeated to ROWS rows, against the in-process floor (the model's
`serving_default` on ready serialized examples, batches of 4,096).

The job's figure covers everything after start-up: planning, reading and encoding the CSV,
the model, the part files, the statistics and the gate (the SavedModel is loaded inside the
job too, so that is in).

    python -m bench.scoring [--rows N] [--out build/bench/scoring.json]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import time
from pathlib import Path

import tensorflow as tf

from bench import RESULTS_DIR, machine, report
from bench.serving import _examples, _untrained_model
from ctpipe.common import features
from ctpipe.dataprep import spans as data
from ctpipe.scoring import publish
from ctpipe.scoring.encode import ExampleEncoder
from ctpipe.scoring.job import plan_ranges, read_range

ROWS = 2_000_000


def _trips(path: Path, rows: int) -> Path:
    with data.bundled_source().open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, source = reader.fieldnames, list(reader)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for start in range(0, rows, len(source)):
            writer.writerows(source[:rows - start])
    return path


def _in_process_rows_per_s(model: Path, trips: Path) -> float:
    chunk = next(plan_ranges(str(trips), trips.name))
    table = read_range(chunk)
    examples = ExampleEncoder().encode_table(table)
    signature = tf.saved_model.load(str(model)).signatures["serving_default"]
    batches = [tf.constant(examples[i:i + 4096]) for i in range(0, len(examples), 4096)]
    signature(**{features.EXAMPLES_KEY: batches[0]})
    started, rows = time.perf_counter(), 0
    for batch in batches:
        signature(**{features.EXAMPLES_KEY: batch})
        rows += int(batch.shape[0])
    return rows / (time.perf_counter() - started)


def bench_scoring(work: Path, model: Path | None = None, rows: int = ROWS) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = _untrained_model(work / "model", _examples(2000))
    trips = _trips(work / "trips" / "trips.csv", rows)
    source = publish.model_source(str(model), None, "big_tipper", None)
    result = publish.score(source, str(trips), str(work / "out"),
                           beam_args=["--direct_running_mode=in_memory",
                                      "--direct_num_workers=1"])
    return {"scoring_rows_count": result.rows,
            "scoring_seconds": round(result.seconds, 2),
            "scoring_rows_per_s": round(result.rows / result.seconds),
            "scoring_inprocess_floor_rows_per_s": round(_in_process_rows_per_s(model, trips))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="SavedModel (default: our model, untrained)")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--out", default=str(RESULTS_DIR / "scoring.json"))
    parser.add_argument("--work", default="build/bench-scoring", help="scratch folder (recreated)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    started = machine()
    report("scoring", bench_scoring(work, Path(args.model).resolve() if args.model else None,
                                    args.rows), args.out, started)


if __name__ == "__main__":
    main()
