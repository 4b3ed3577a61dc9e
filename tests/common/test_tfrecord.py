"""`ctpipe.common.tfrecord` writes what TensorFlow reads and reads what TensorFlow writes."""
from __future__ import annotations

import io

import pytest
import tensorflow as tf

from ctpipe.common import tfrecord

RECORDS = [b"", b"x", bytes(range(256)) * 40]


def test_tensorflow_reads_our_records(tmp_path):
    path = tmp_path / "ours.tfrecord"
    path.write_bytes(b"".join(tfrecord.frame(r) for r in RECORDS))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == RECORDS


def test_we_read_tensorflows_records_and_refuse_corrupt_ones(tmp_path):
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in RECORDS:
            writer.write(record)
    data = path.read_bytes()
    assert list(tfrecord.read_records(io.BytesIO(data))) == RECORDS
    # A record cut short (a file being written) ends the reading; a flipped bit is an error.
    assert list(tfrecord.read_records(io.BytesIO(data[:-3]))) == RECORDS[:2]
    corrupt = bytearray(data)
    corrupt[-10] ^= 1
    with pytest.raises(tfrecord.CorruptRecordError, match="corrupt record data at byte 33"):
        list(tfrecord.read_records(io.BytesIO(bytes(corrupt)), "theirs"))
