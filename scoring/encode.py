"""CSV columns -> serialized tf.Examples, fast: the same bytes' meaning as
`serving.client.examples.row_to_example` (an empty cell leaves the feature out), built from
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
from typing import Any, Sequence

from models import features

# Entries cached per feature before the cache is dropped (bounds memory on unique values).
_CACHE_LIMIT = 200_000


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
    """Encodes rows given as columns (lists of Python values, None for an empty cell)."""

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

    def encode(self, columns: dict[str, Sequence[Any]], rows: int) -> list[bytes]:
        """Serialized tf.Examples, one per row; a column absent from `columns` is a missing
        feature in every row."""
        per_feature = []
        for feature in features.FEATURES:
            values = columns.get(feature.name)
            if values is None:
                continue
            entry, dtype, name = self._entry, feature.dtype, feature.name
            per_feature.append([b"" if v is None else entry(name, dtype, v) for v in values])
        examples = []
        for row_entries in zip(*per_feature) if per_feature else [()] * rows:
            body = b"".join(row_entries)
            examples.append(_length_delimited(1, body))
        return examples
