"""Shared fixtures: small slices of the real Chicago taxi data, made by the tests."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dataprep import spans as data  # noqa: E402


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
def s3_server():
    """A real S3 API on loopback (containers/oss_launcher.py s3_api): `endpoint`, `client`,
    `environment`. Tests make buckets of their own names."""
    from containers.oss_launcher import s3_api

    with s3_api() as server:
        yield server
