"""The fixed-size sample of a window: the first records of each span's file, in file order."""
from __future__ import annotations

import tensorflow as tf

from ctpipe.validation.samples import first_records


def _gzipped(path, records: list[bytes]) -> str:
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    return str(path)


def test_each_file_gives_its_share_from_its_start(tmp_path):
    files = [_gzipped(tmp_path / f"span-{span}.gz", [f"{span}:{i}".encode() for i in range(size)])
             for span, size in ((1, 10), (2, 2), (3, 10))]
    assert first_records(files, 9) == [b"1:0", b"1:1", b"1:2", b"2:0", b"2:1",
                                       b"3:0", b"3:1", b"3:2"], "3 each; span 2 has only 2"
    assert first_records(files, 1) == [b"1:0", b"2:0", b"3:0"], "at least one from each"
    assert first_records(files, 0) == [] and first_records([], 5) == []
