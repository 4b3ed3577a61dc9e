"""Shared fixtures: small slices of the real Chicago taxi data, and a small model trained on
them, made by the tests."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from ctpipe.common import features
from ctpipe.dataprep import spans as data  # noqa: E402
from ctpipe.models.export import export_serving_model
from ctpipe.models.inputs import parse_examples
from ctpipe.models.model import HParams, build_model, fit_feature_stats
from ctpipe.serving.client.examples import row_to_example
from tests.containers.oss_launcher import s3_api


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def taxi_rows() -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of the taxi trips file shipped in the tfx wheel."""
    with data.bundled_source().open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="session")
def small_source(tmp_path_factory, taxi_rows) -> Path:
    """Every 4th trip of 2013-2014: about 2,200 rows over 8 quarters."""
    header, rows = taxi_rows
    kept = [r for i, r in enumerate(rows)
            if i % 4 == 0 and int(r["trip_start_timestamp"]) < 1420070400]
    return write_csv(tmp_path_factory.mktemp("source") / "trips.csv", header, kept)


@pytest.fixture(scope="session")
def csv_writer():
    """The `write_csv(path, header, rows)` helper, for tests that build their own files."""
    return write_csv


@pytest.fixture(scope="session")
def serialized_examples(taxi_rows) -> list[bytes]:
    """The first 600 trips as clients send them (serving and monitoring tests)."""
    _, rows = taxi_rows
    return [row_to_example(r) for r in rows[:600]]


@pytest.fixture(scope="session")
def trained_model(serialized_examples, taxi_rows):
    """Our Keras model, fitted on real trips for a few steps (fast, deterministic)."""
    _, rows = taxi_rows
    columns = {k: v.numpy() for k, v in
               parse_examples(tf.constant(serialized_examples), with_label=False).items()}
    model = build_model(fit_feature_stats(columns, HParams()), HParams())
    labels = np.array([[features.is_big_tipper(float(r["tips"] or 0), float(r["fare"] or 0))]
                       for r in rows[:600]], dtype=np.float32)
    model.fit(columns, labels, batch_size=128, epochs=1, steps_per_epoch=4, verbose=0)
    return model


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory, trained_model) -> Path:
    """The SavedModel our Trainer exports (`serving_default`: examples -> probability)."""
    export_dir = tmp_path_factory.mktemp("export") / "model"
    export_serving_model(trained_model, str(export_dir))
    return export_dir


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API on loopback (tests/containers/oss_launcher.py s3_api): `endpoint`, `client`,
    `environment`. Tests make buckets of their own names."""
    with s3_api() as server:
        yield server
