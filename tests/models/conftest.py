"""Training data of the models' tests: small slices of the real taxi data."""
from __future__ import annotations

import csv

import keras
import pytest

from bench.trips import write_examples
from ctpipe.dataprep import spans as data


@pytest.fixture(scope="session")
def splits(tmp_path_factory, small_source) -> dict[str, tuple[list[str], list[str]]]:
    """(train files, eval files) of the older spans 1-3 and of the newer spans 4-6."""
    root = tmp_path_factory.mktemp("training")
    data.prepare(root / "spans", small_source)
    result = {}
    for name, numbers in (("old", (1, 2, 3)), ("new", (4, 5, 6))):
        rows = []
        for number in numbers:
            with (root / "spans" / f"span-{number}" / "data.csv").open(newline="") as handle:
                rows += list(csv.DictReader(handle))
        result[name] = (
            [write_examples([r for i, r in enumerate(rows) if i % 5], str(root / name / "train.gz"))],
            [write_examples(rows[::5], str(root / name / "eval.gz"))])
    return result


class Interrupt(keras.callbacks.Callback):
    """Stands in for a crash: stops the process's training at a given global batch."""

    def __init__(self, at_batch: int):
        super().__init__()
        self.remaining = at_batch

    def on_train_batch_end(self, batch, logs=None):
        self.remaining -= 1
        if self.remaining == 0:
            raise KeyboardInterrupt("simulated crash")
