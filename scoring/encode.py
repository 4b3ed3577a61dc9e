"""CSV columns -> serialized tf.Examples, fast: the same bytes' meaning as
`ctpipe.serving.client.examples.row_to_example` (an empty cell leaves the feature out), built from
whole columns instead of one message per row.

A tf.Example is `features { feature { key: NAME value { <kind>_list { value: V } } } ... }`;
on the wire each feature is one self-contained map entry. Trip columns repeat their values a
lot (hours, areas, companies, fares), so each entry's bytes are built once per distinct
value and a row is the concatenation of its entries: a few dictionary look-ups per row where
building a message costs tens of microseconds. `tests/scoring` checks the bytes parse to the
same Example as `row_to_example`'s.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pyarrow.compute as pc

from ctpipe.common import features

# Entries cached per feature before the cache is dropped (bounds memory on unique values).
_CACHE_LIMIT = 200_000
_EMPTY_EXAMPLE = b"\x0a\x00"  # features {}


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative integer (negatives as 10-byte two's
    complement, as protobuf writes int64)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _value_list(dtype: str, value: Any) -> bytes:
    """Feature{<kind>_list{value: [value]}} (packed for numbers)."""
    if dtype == "string":
        return _length_delimited(1, _length_delimited(1, value.encode()))
    if dtype == "float32":
        return _length_delimited(2, _length_delimited(1, struct.pack("<f", value)))
    return _length_delimited(3, _length_delimited(1, _varint(int(value))))


class ExampleEncoder:
    """Encodes tables of trips; keeps each feature's entries for the values it has seen."""

    def __init__(self) -> None:
        self._keys = {f.name: _length_delimited(1, f.name.encode()) for f in features.FEATURES}
        self._caches: dict[str, dict[Any, bytes]] = {f.name: {} for f in features.FEATURES}

    def _entry(self, name: str, dtype: str, value: Any) -> bytes:
        cache = self._caches[name]
        entry = cache.get(value)
        if entry is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            entry = cache[value] = _length_delimited(
                1, self._keys[name] + _length_delimited(2, _value_list(dtype, value)))
        return entry

    def encode_table(self, table: Any) -> list[bytes]:
        """Serialized tf.Examples, one per row of a pyarrow Table of raw columns (features
        typed as `ctpipe.scoring.job.read_range` reads them; a null cell or an absent column leaves
        the feature out). Each column is dictionary-encoded, so an entry is built once per
        distinct value and picked for every row by numpy; a row is one join of its entries."""
        columns = []
        for feature in features.FEATURES:
            if feature.name not in table.column_names:
                continue
            column = table.column(feature.name).combine_chunks()
            if feature.dtype == "int64":
                column = column.cast("int64")
            encoded = pc.dictionary_encode(column)
            values = encoded.dictionary.to_pylist()
            entries = np.array([self._entry(feature.name, feature.dtype, v) for v in values]
                               + [b""], dtype=object)
            indices = encoded.indices.fill_null(len(values)).to_numpy()
            columns.append(entries[indices].tolist())
        if not columns:
            return [_EMPTY_EXAMPLE] * table.num_rows
        prefixes: dict[int, bytes] = {}
        examples = []
        for row in zip(*columns):
            body = b"".join(row)
            size = len(body)
            prefix = prefixes.get(size)
            if prefix is None:
                prefix = prefixes[size] = b"\x0a" + _varint(size)
            examples.append(prefix + body)
        return examples
