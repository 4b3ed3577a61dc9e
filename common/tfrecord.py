"""TFRecord files without TensorFlow: the framing `tf.io.TFRecordWriter` writes and
`tf.data.TFRecordDataset` reads (uncompressed).

Each record is: length (uint64, little-endian), the masked CRC-32C of those 8 bytes (uint32),
the data, the masked CRC-32C of the data (uint32). The prediction logs of `ctpipe serve` and
`ctpipe gateway` are written with it, and `ctpipe rollout analyze` reads them, so none of them
needs the TensorFlow runtime for this.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as it is stored."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, struct.pack("<I", masked_crc(length)), data,
                     struct.pack("<I", masked_crc(data))))


class CorruptRecordError(ValueError):
    """A record whose framing or checksum is wrong; the message names the file and offset."""


def read_records(handle: BinaryIO, name: str = "file") -> Iterator[bytes]:
    """The records of an open file; a record cut short at the end (a file still being written)
    ends the iteration, a wrong checksum raises CorruptRecordError."""
    offset = 0
    while True:
        header = handle.read(12)
        if len(header) < 12:
            return
        length, length_crc = struct.unpack("<QI", header)
        if masked_crc(header[:8]) != length_crc:
            raise CorruptRecordError(f"{name}: corrupt record length at byte {offset}")
        body = handle.read(length + 4)
        if len(body) < length + 4:
            return
        data = body[:length]
        if masked_crc(data) != struct.unpack("<I", body[length:])[0]:
            raise CorruptRecordError(f"{name}: corrupt record data at byte {offset}")
        offset += 16 + length
        yield data
