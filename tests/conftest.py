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
    """A real S3 API on loopback (moto's server): its `endpoint`, a boto3 `client`, and the
    `environment` both TensorFlow's (tensorflow-io) and Beam's (boto3) S3 file systems read.
    Tests make buckets of their own names."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    environment = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                   "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    yield {"endpoint": endpoint, "environment": environment, "client": client}
    server.stop()
