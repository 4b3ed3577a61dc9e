"""Trainer benchmark and the worked transfer-learning scenario, on the bundled taxi trips.

- Warm start: a model trained on spans 1-14 (the blessed model of the previous run) seeds the
  training on spans 1-15. Figure: training steps until the warm-started model reaches the
  held-out AUC that a cold start reaches after all its steps, as a fraction of those steps.
- Transfer learning: pretrain on spans 1-12 (2013-2015); the recent quarter, span 15 (2016-Q3),
  has only about 200 trips: half train, the other half are held out. Fine-tuning the pretrained
  trunk is compared with training from scratch on the same trips and steps, over a few seeds.
- Checkpoint and TensorBoard overhead: the same training with checkpoints every 100 steps
  and without, and with TensorBoard logs on top.

Held-out trips (every fifth trip; every second one in the small quarter) are in no training set.

    python -m bench.trainer [--work build/bench-trainer] [--out build/bench/trainer.json]
"""
from __future__ import annotations

import csv
import logging
import math
import shutil
import statistics
import time
from pathlib import Path

from bench import arguments, machine, report
from bench.trips import write_examples
from ctpipe.dataprep import spans as data
from ctpipe.models.export import export_serving_model
from ctpipe.models.model import HParams
from ctpipe.models.options import CheckpointOptions, TransferOptions, WarmStartOptions
from ctpipe.models.training import train

STEPS = 600
VALIDATE_EVERY = 20
TRANSFER_QUARTER = 15
TRANSFER_STEPS = 200
TRANSFER_SEEDS = (1, 2, 3, 4, 5)
TIMING_REPEATS = 3


def _rows(spans_dir: Path, numbers) -> list[dict[str, str]]:
    rows = []
    for number in numbers:
        with (spans_dir / f"span-{number}" / "data.csv").open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def _split(rows, folder: Path) -> tuple[list[str], list[str], int]:
    """(train files, held-out files, held-out count): every fifth trip is held out."""
    held_out = rows[::5]
    train = [row for index, row in enumerate(rows) if index % 5]
    return ([write_examples(train, str(folder / "train.gz"))],
            [write_examples(held_out, str(folder / "held_out.gz"))], len(held_out))


def _validation_steps(count: int, batch_size: int) -> int:
    return math.ceil(count / batch_size)


def bench_warm_start(spans_dir: Path, work: Path) -> dict[str, float]:
    hparams = HParams()
    previous_train, previous_eval, previous_count = _split(_rows(spans_dir, range(1, 15)),
                                                           work / "previous")
    base = train(previous_train, previous_eval, train_steps=STEPS,
                 eval_steps=_validation_steps(previous_count, hparams.batch_size),
                 hparams=hparams)
    base_dir = str(work / "blessed" / "Format-Serving")
    export_serving_model(base.model, base_dir)

    train_files, held_out, count = _split(_rows(spans_dir, range(1, 16)), work / "current")
    settings = dict(train_steps=STEPS, eval_steps=_validation_steps(count, hparams.batch_size),
                    hparams=hparams, steps_per_epoch=VALIDATE_EVERY)
    cold = train(train_files, held_out, **settings)
    warm = train(train_files, held_out, **settings,
                 warm_start=WarmStartOptions("required", base_dir))
    target = cold.history["val_auc"][-1]
    reached = next((index for index, auc in enumerate(warm.history["val_auc"]) if auc >= target),
                   None)
    warm_steps = STEPS if reached is None else (reached + 1) * VALIDATE_EVERY
    return {
        "warm_start_cold_final_held_out_auc": round(target, 4),
        "warm_start_final_held_out_auc": round(warm.history["val_auc"][-1], 4),
        "warm_start_steps_to_cold_auc": warm_steps,
        "warm_start_steps_fraction_of_cold": round(warm_steps / STEPS, 3),
    }


def bench_transfer(spans_dir: Path, work: Path) -> dict[str, float]:
    hparams = HParams()
    older_train, older_eval, older_count = _split(_rows(spans_dir, range(1, 13)), work / "older")
    pretrained = train(older_train, older_eval, train_steps=STEPS,
                       eval_steps=_validation_steps(older_count, hparams.batch_size),
                       hparams=hparams)
    pretrained_dir = str(work / "pretrained")
    export_serving_model(pretrained.model, pretrained_dir)

    recent = _rows(spans_dir, [TRANSFER_QUARTER])
    small, held_out = recent[1::2], recent[::2]

    train_files = [write_examples(small, str(work / "recent" / "train.gz"))]
    held_out_files = [write_examples(held_out, str(work / "recent" / "held_out.gz"))]
    settings = dict(train_steps=TRANSFER_STEPS, hparams=hparams, steps_per_epoch=TRANSFER_STEPS,
                    eval_steps=_validation_steps(len(held_out), hparams.batch_size))
    transfer = TransferOptions(pretrained_dir, "fine_tuning", fine_tune_layers=1,
                               fine_tune_learning_rate=3e-4)
    scratch_auc, transfer_auc = [], []
    for seed in TRANSFER_SEEDS:
        scratch_auc.append(train(train_files, held_out_files, seed=seed,
                                 **settings).history["val_auc"][-1])
        transfer_auc.append(train(train_files, held_out_files, seed=seed, transfer=transfer,
                                  **settings).history["val_auc"][-1])
    differences = [t - s for t, s in zip(transfer_auc, scratch_auc)]
    return {
        "transfer_recent_train_trips": len(small),
        "transfer_held_out_trips": len(held_out),
        "transfer_held_out_auc_mean": round(statistics.mean(transfer_auc), 4),
        "scratch_held_out_auc_mean": round(statistics.mean(scratch_auc), 4),
        "transfer_minus_scratch_auc_mean": round(statistics.mean(differences), 4),
        "transfer_minus_scratch_auc_stdev": round(statistics.stdev(differences), 4),
        "transfer_minus_scratch_auc_min": round(min(differences), 4),
        "transfer_seeds": len(TRANSFER_SEEDS),
    }


def bench_checkpoint_overhead(spans_dir: Path, work: Path) -> dict[str, float]:
    """The same training without checkpoints, with checkpoints every 100 steps, and with
    those and TensorBoard logs (models/tensorboard.py: loss every 10 steps, metrics per
    epoch, hparams and the serving graph, copied into the ModelRun at the end)."""
    hparams = HParams()
    train_files, held_out, count = _split(_rows(spans_dir, range(1, 16)), work / "data")
    settings = dict(train_steps=STEPS, eval_steps=_validation_steps(count, hparams.batch_size),
                    hparams=hparams)
    train(train_files, held_out, **settings)  # warm-up: graph tracing, file cache
    seconds: dict[str, list[float]] = {"none": [], "checkpoints": [], "tensorboard": []}
    for repeat in range(TIMING_REPEATS):
        for variant, timings in seconds.items():
            root = work / f"checkpoints-{repeat}"
            options = CheckpointOptions(root=str(root) if variant != "none" else "",
                                        every_steps=100)
            model_run = str(work / f"model_run-{repeat}") if variant == "tensorboard" else ""
            start = time.perf_counter()
            train(train_files, held_out, checkpoints=options, model_run_dir=model_run,
                  **settings)
            timings.append(time.perf_counter() - start)
            shutil.rmtree(root, ignore_errors=True)
    off, on, board = (statistics.median(seconds[k]) for k in ("none", "checkpoints",
                                                               "tensorboard"))
    return {
        "train_600_steps_no_checkpoints_s": round(off, 2),
        "train_600_steps_checkpoints_every_100_s": round(on, 2),
        "checkpoint_overhead_pct": round(100 * (on - off) / off, 1),
        "train_600_steps_checkpoints_and_tensorboard_s": round(board, 2),
        "tensorboard_overhead_pct": round(100 * (board - on) / on, 1),
    }


def bench_trainer(work: Path) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spans_dir = work / "spans"
    data.prepare(spans_dir)
    results = {}
    results.update(bench_warm_start(spans_dir, work / "warm"))
    results.update(bench_transfer(spans_dir, work / "transfer"))
    results.update(bench_checkpoint_overhead(spans_dir, work / "checkpoints"))
    return results


def main() -> None:
    args = arguments(__doc__, "build/bench-trainer", "trainer").parse_args()
    started = machine()
    logging.basicConfig(level=logging.WARNING)
    results = bench_trainer(Path(args.work).resolve())
    report("trainer", results, args.out, started)


if __name__ == "__main__":
    main()
