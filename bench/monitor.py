"""`ctpipe monitor`: how fast it reads real prediction logs, and the output check's threshold
(docs/monitoring.md).

    python -m bench.monitor [--requests 5000] [--copies 10] [--out build/bench/monitor.json]
    python -m bench.monitor --output-noise [--draws 600] [--seed 0]

Throughput: our model (trained briefly on the bundled trips) is pushed with the references the
pipeline stores beside a version; `ctpipe serve` (its own process) logs `--requests` real
batch-1 Predict calls; its log file is then copied `--copies - 1` times as further rotated files
(real records, repeated), and `monitor()` reads the last requests x copies records in this
process after a warm-up call (imports and first TFDV run excluded, as "after start-up").

Output noise: the model trained on spans 1-15's train split; its predictions on their eval split
are the reference (as the Pusher records them). No-shift draws of served requests (rows drawn
from spans 1-15) measure the output distance when nothing changed; shifted draws and the real
next quarter (span 16) show what it sees. The threshold rule is the drift rule's: p99 of the
no-shift distances at the smallest compared sample (200 examples), plus a fifth.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from bench import RESULTS_DIR, machine, report
from bench.drift import (
    CLEAR_SHIFTS,
    percentile,
    quarters,
    read_schema,
    rule_threshold,
    statistics_of,
    train_rows,
)
from ctpipe.common import features
from ctpipe.common.layout import MODEL_CARD_FILE, PUSH_RECORD_FILE, TRAINING_STATISTICS_FILE
from ctpipe.models.export import export_serving_model
from ctpipe.models.inputs import parse_examples
from ctpipe.models.model import HParams, build_model, fit_feature_stats
from ctpipe.monitoring.logs import log_files, read_window
from ctpipe.monitoring.summary import (
    OUTPUT_DISTANCE_THRESHOLD,
    OUTPUT_TOLERANCE,
    monitor,
    output_distance,
)
from ctpipe.pipeline.config import DEFAULT_SCHEMA
from ctpipe.program import program
from ctpipe.serving.client.examples import row_to_example
from ctpipe.serving.client.grpc_client import PredictionClient
from ctpipe.serving.server.process import ServerProcess
from ctpipe.validation.drift import prediction_summary

MODEL_NAME = "big_tipper"
TRAINING_STATISTICS_ROWS = 3000  # the fixed-size training sample the Pusher profiles
Row = Mapping[str, str]


def window_rows(spans: int = 15) -> list[dict[str, str]]:
    """The labelled trips of the first `spans` quarters (the window of a run on spans 1..N)."""
    return [row for _, rows in quarters()[:spans] for row in rows]


def split_rows(rows: Sequence[Row], schema) -> tuple[list[Row], list[Row]]:
    """ExampleGen's 4:1 hash split of the rows: (train, eval)."""
    train = train_rows(rows, schema)
    kept = {id(row) for row in train}
    return train, [row for row in rows if id(row) not in kept]


def served_examples(rows: Sequence[Row]) -> list[bytes]:
    """Rows as `ctpipe predict` sends them (empty cells, label and tips left out)."""
    return [row_to_example(row) for row in rows]


def train_model(rows: Sequence[Row], export_dir: Path, epochs: int, seed: int = 0) -> Path:
    """Our model fitted on `rows` (label: big_tipper) and exported as the Trainer does."""
    keras.utils.set_random_seed(seed)
    columns = {k: v.numpy() for k, v in
               parse_examples(tf.constant(served_examples(rows)), with_label=False).items()}
    labels = np.array([[float(row[features.LABEL])] for row in rows], dtype=np.float32)
    model = build_model(fit_feature_stats(columns, HParams()), HParams())
    model.fit(columns, labels, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    export_serving_model(model, str(export_dir))
    return export_dir


def predict(model_dir: Path, examples: Sequence[bytes]) -> list[float]:
    """The SavedModel's `serving_default` probabilities, in batches of 1,024."""
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    result: list[float] = []
    for start in range(0, len(examples), 1024):
        batch = tf.constant(list(examples[start:start + 1024]))
        result += signature(examples=batch)[features.PREDICTION_KEY].numpy().ravel().tolist()
    return result


def stage_version(model_dir: Path, base_path: Path, version: int, train_rows: Sequence[Row],
                  eval_predictions: Sequence[float], schema, window_spans: str) -> Path:
    """Pushes `model_dir` as `base_path/version` with what the pipeline stores beside it
    (assets.extra/ctpipe/): statistics of a fixed-size sample of the training rows, the push
    record with the eval split's prediction summary, and the model card."""
    target = base_path / str(version)
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    sample = random.Random(version).sample(list(train_rows),
                                           min(TRAINING_STATISTICS_ROWS, len(train_rows)))
    extras = {
        TRAINING_STATISTICS_FILE: statistics_of(sample, schema).SerializeToString(),
        PUSH_RECORD_FILE: json.dumps({"pushed_at": int(time.time()),
                                      "eval_predictions": prediction_summary(eval_predictions)}),
        MODEL_CARD_FILE: json.dumps({"window_digest": "bench", "window_spans": window_spans,
                               "newest_span": int(window_spans.split("-")[-1]),
                               "training": "full", "origin": "scratch", "steps": 0,
                               "code_version": "bench"}),
    }
    for path, content in extras.items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(content if isinstance(content, bytes) else content.encode())
    shutil.copy2(model_dir / "saved_model.pb", target / "saved_model.pb")
    return target


def send_logged_requests(base_path: Path, prefix: Path, examples: Sequence[bytes],
                         work: Path, clients: int = 4) -> None:
    """Serves `base_path` with `ctpipe serve` (its own process), logging every request to
    `prefix`, and sends each example as one batch-1 Predict call; the log is complete when the
    server has stopped."""
    with ServerProcess(program("serve"), [f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}",
                        f"--prediction_log_file_prefix={prefix}",
                        "--prediction_log_sampling_rate=1.0"], work / "serve.log") as server, \
            PredictionClient(server.target, MODEL_NAME) as client, \
            concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda example: client.predict([example]), examples))


def bench_monitor(work: Path, requests: int = 5000, copies: int = 10) -> dict[str, float]:
    """Logged requests read per second by `monitor()` after start-up, over real logs."""
    work.mkdir(parents=True, exist_ok=True)
    schema = read_schema()
    rows = window_rows()
    train, evaluation = split_rows(rows, schema)
    model = train_model(train, work / "model", epochs=1)
    base_path = work / "serving" / MODEL_NAME
    stage_version(model, base_path, 1, train, predict(model, served_examples(evaluation)),
                  schema, "1-15")
    prefix = work / "logs" / MODEL_NAME
    drawn = random.Random(0).choices(rows, k=requests)
    send_logged_requests(base_path, prefix, served_examples(drawn), work)
    (logged,) = log_files(str(prefix))
    for number in range(2, copies + 1):
        shutil.copy(logged, f"{prefix}-{number:05d}.tfrecord")
    total = requests * copies

    monitor(str(prefix), str(base_path), MODEL_NAME, DEFAULT_SCHEMA, 1000, 200)  # warm-up
    started = time.perf_counter()
    window = read_window(str(prefix), MODEL_NAME, total)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    summary = monitor(str(prefix), str(base_path), MODEL_NAME, DEFAULT_SCHEMA, total, 200)
    seconds = time.perf_counter() - started
    assert window.records == summary["window"]["records"] == total, summary["window"]
    print(f"monitor over {total} logged requests ({copies} files): {seconds:.2f} s, of which "
          f"reading and decoding the records {read_seconds:.2f} s; status {summary['status']}")
    return {"monitor_logged_requests_count": total,
            "monitor_seconds_after_startup_s": round(seconds, 2),
            "monitor_read_decode_s": round(read_seconds, 2),
            "monitor_logged_requests_per_s": round(total / seconds)}


def bench_output_noise(work: Path, draws: int = 600, seed: int = 0) -> dict[str, float]:
    """No-shift and shifted output distances; the threshold the rule gives."""
    work.mkdir(parents=True, exist_ok=True)
    schema = read_schema()
    rows = window_rows()
    train, evaluation = split_rows(rows, schema)
    model = train_model(train, work / "model", epochs=5, seed=seed)
    eval_predictions = np.array(predict(model, served_examples(evaluation)))
    eval_quantiles = prediction_summary(eval_predictions.tolist())["quantiles"]
    served = np.array(predict(model, served_examples(rows)))
    print(f"spans 1-15: {len(train)} train / {len(evaluation)} eval rows; eval predictions' "
          "quantiles: " + ", ".join(f"{q}: {v:.4f}" for q, v in eval_quantiles.items()))
    rng = np.random.default_rng(seed)

    def sample(pool: np.ndarray, size: int) -> np.ndarray:
        return pool[rng.integers(0, len(pool), size)]

    def distances(pool: np.ndarray, size: int, count: int = draws,
                  tolerance: float = OUTPUT_TOLERANCE) -> list[float]:
        return [output_distance(sample(pool, size), eval_quantiles, tolerance)[0]
                for _ in range(count)]

    results: dict[str, float] = {}
    print(f"\nno-shift p99 at 200 served examples by tolerance on the probability axis "
          f"(in code: {OUTPUT_TOLERANCE}):")
    for tolerance in (0.0, 0.001, 0.01, 0.02):
        p99 = percentile(distances(served, 200, tolerance=tolerance), 0.99)
        print(f"  {tolerance:<6} p99 {p99:.3f}")
        results[f"output_noshift_200_p99_tolerance_{tolerance}"] = round(p99, 3)

    print(f"\nno-shift output distance ({draws} draws): p95 / p99 / max, draws over "
          f"{OUTPUT_DISTANCE_THRESHOLD}")
    noise = {size: distances(served, size) for size in (200, 1000, 10_000)}
    # A small window (four 2016 quarters: ~170 eval rows) has a noisy reference as well.
    noise["200 vs a 170-row eval split"] = [
        output_distance(sample(served, 200), prediction_summary(
            sample(eval_predictions, 170).tolist())["quantiles"])[0] for _ in range(draws)]
    for size, values in noise.items():
        print(f"  {size:>6}: {percentile(values, 0.95):.3f} / {percentile(values, 0.99):.3f} / "
              f"{max(values):.3f}, {sum(v > OUTPUT_DISTANCE_THRESHOLD for v in values)}")
        results[f"output_noshift_{str(size).split()[0]}_p99"
                + ("_eval170" if isinstance(size, str) else "")] = round(
            percentile(values, 0.99), 3)
    threshold = rule_threshold(noise[200], noise["200 vs a 170-row eval split"])
    print(f"rule (the higher p99 at 200 served examples x 1.2, rounded up): {threshold}; "
          f"in code: {OUTPUT_DISTANCE_THRESHOLD}")
    results.update(output_threshold_rule=threshold,
                   output_threshold_in_code=OUTPUT_DISTANCE_THRESHOLD)

    print("\nshifted requests (200 examples, 50 draws): median / min output distance")
    for what, change in CLEAR_SHIFTS.values():
        changed = []
        for index, row in enumerate(rows):
            copy = dict(row)
            change(index, copy)
            changed.append(copy)
        values = distances(np.array(predict(model, served_examples(changed))), 200, count=50)
        print(f"  {what:<36} {float(np.median(values)):.3f} / {min(values):.3f}")
        results[f"output_shift_{what.split()[0]}_median"] = round(float(np.median(values)), 3)
    name, next_rows = quarters()[15]
    distance, at, (low, high) = output_distance(
        np.array(predict(model, served_examples(next_rows))), eval_quantiles)
    print(f"  real next quarter (span 16, {name}, all {len(next_rows)} trips): {distance:.3f} "
          f"(at quantile {at}: {low:.1%}-{high:.1%} of the served predictions below)")
    results["output_span16_distance"] = round(distance, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="real logged requests")
    parser.add_argument("--copies", type=int, default=10, help="files of them read")
    parser.add_argument("--output-noise", action="store_true",
                        help="measure the output check's noise and threshold instead")
    parser.add_argument("--draws", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="default: build/bench/monitor.json, or "
                        "build/bench/monitor_output_noise.json with --output-noise")
    args = parser.parse_args()
    section = "monitor_output_noise" if args.output_noise else "monitor"
    started = machine()
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as work:
        results = (bench_output_noise(Path(work), args.draws, args.seed) if args.output_noise
                   else bench_monitor(Path(work), args.requests, args.copies))
    report(section, results, args.out or RESULTS_DIR / f"{section}.json", started)


if __name__ == "__main__":
    main()
