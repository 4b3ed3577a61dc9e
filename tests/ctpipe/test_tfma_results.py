"""Reading TFMA's result files without TensorFlow; the results of a real Evaluator are compared
with TFMA's own reading at the end of tests/test_e2e.py."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ctpipe import tfma_results

REPO = Path(__file__).resolve().parents[2]


def test_tfma_result_protos_load_without_tensorflow():
    """TFMA's package imports TensorFlow; its result protos alone do not need to."""
    probe = ("import sys; from ctpipe import tfma_results; "
             "print(tfma_results._protos().MetricsForSlice.DESCRIPTOR.full_name, "
             "sorted(m for m in ('tensorflow', 'tensorflow_model_analysis') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=True)
    assert done.stdout.split() == ["tensorflow_model_analysis.MetricsForSlice", "[]"]


def test_tfrecords_written_by_tensorflow_are_read_and_damage_is_named(tmp_path):
    import tensorflow as tf

    path = tmp_path / "metrics-00000-of-00001"
    records = [b"first", b"", b"x" * 70000]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)

    assert list(tfma_results.read_records(path)) == records

    data = bytearray(path.read_bytes())
    data[12 + 2] ^= 0xFF  # a byte of the first record
    path.write_bytes(bytes(data))
    with pytest.raises(tfma_results.EvaluationError, match="corrupt record data at byte 0"):
        list(tfma_results.read_records(path))
    path.write_bytes(struct.pack("<Q", 5))
    with pytest.raises(tfma_results.EvaluationError, match="truncated record header"):
        list(tfma_results.read_records(path))
