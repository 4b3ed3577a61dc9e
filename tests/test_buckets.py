"""The pipeline with what outlives a run in a bucket: span index, checkpoints and the serving
folder on `s3://` (a real S3 API on loopback: moto's server), as on a cluster whose MinIO or S3
the steps reach directly. `ctpipe run` as a user types it, in processes of its own.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ctpipe.dataprep import spans as data

pytestmark = pytest.mark.e2e

BUCKET = "ct-bucket"


@pytest.fixture(scope="module")
def s3(s3_server):
    """The loopback S3 endpoint (tests/conftest.py) with this module's bucket."""
    s3_server["client"].create_bucket(Bucket=BUCKET)
    return s3_server


def _keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _run(tmp: Path, s3: dict, data_root: Path) -> subprocess.CompletedProcess:
    settings = tmp / "buckets.yaml"
    settings.write_text(
        f"serving_root: s3://{BUCKET}/serving\nspan_index: s3://{BUCKET}/span-index\n"
        "train_steps: 120\neval_steps: 5\nmin_auc: 0.6\n"
        f"trainer: {{steps_per_epoch: 40, staleness: {{max_vocabulary_gap: 0.15}}, "
        f"checkpoints: {{root: s3://{BUCKET}/checkpoints}}}}\n")
    return subprocess.run(
        [sys.executable, "-m", "ctpipe.cli", "run", "--data", str(data_root), "--workspace",
         str(tmp / "ws"), "--config", str(settings)],
        capture_output=True, text=True, timeout=900, env={**os.environ, **s3["environment"]})


def test_span_index_checkpoints_and_served_models_in_a_bucket(s3, tmp_path, small_source):
    data.prepare(tmp_path / "all", small_source)
    incoming = tmp_path / "incoming"
    for span in (1, 2, 3, 4):
        shutil.copytree(tmp_path / "all" / f"span-{span}", incoming / f"span-{span}")

    first = _run(tmp_path, s3, incoming)
    assert first.returncode == 0, first.stderr[-3000:]
    client = s3["client"]
    versions = {key.split("/")[2] for key in _keys(client, "serving/big_tipper/")}
    assert len(versions) == 1, versions
    (version,) = versions
    pushed = _keys(client, f"serving/big_tipper/{version}/")
    assert f"serving/big_tipper/{version}/saved_model.pb" in pushed
    assert f"serving/big_tipper/{version}/assets.extra/ctpipe/push.json" in pushed
    index = _keys(client, "span-index/")
    assert {f"span-index/span-{span}.json" for span in (1, 2, 3, 4)} <= set(index)
    # Spans 1-3 were caught up into the bucket; span 4 is ExampleGen's artifact.
    assert any(key.startswith("span-index/store/span-3/") and "/Split-train/" in key
               for key in index)
    assert any("FINISHED.json" in key for key in _keys(client, "checkpoints/"))

    shutil.copytree(tmp_path / "all" / "span-5", incoming / "span-5")
    second = _run(tmp_path, s3, incoming)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "new span 5; referred to 1,2,3,4 where they are stored" in second.stdout
    assert f"Trainer: warm start from served version {version}" in second.stdout
    assert "served model" in second.stdout, "the Evaluator's baseline came from the bucket"
