"""Spans of a chosen size from the shipped trips: exact size, deterministic, the label kept,
the jitter within its bounds, CSV that TFX's own CSV reader takes, and Parquet alike."""
from __future__ import annotations

import hashlib

import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ctpipe.common import features
from ctpipe.dataprep import scale
from ctpipe.dataprep import spans as data


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_spans_of_a_chosen_size_are_deterministic_and_keep_the_label(tmp_path, small_source):
    first = data.prepare(tmp_path / "a", small_source, span_trips=3000)
    second = data.prepare(tmp_path / "b", small_source, span_trips=3000)
    assert {span.rows for span in first} == {3000}
    for span in first:
        name = f"span-{span.number}/data.csv"
        assert _digest(tmp_path / "a" / name) == _digest(tmp_path / "b" / name)
    table = pa_csv.read_csv(tmp_path / "a" / "span-2" / "data.csv")
    label = pc.fill_null(pc.greater(table[features.TIPS],
                                    pc.multiply(table[features.FARE], 0.2)), False)
    assert table[features.LABEL].to_pylist() == [int(v) for v in label.to_pylist()]
    assert len(second) == len(first)


def test_copies_move_within_their_bounds(tmp_path, small_source):
    data.prepare(tmp_path / "shipped", small_source)
    data.prepare(tmp_path / "scaled", small_source, span_trips=5000)
    original = pa_csv.read_csv(tmp_path / "shipped" / "span-3" / "data.csv")
    scaled = pa_csv.read_csv(tmp_path / "scaled" / "span-3" / "data.csv")
    rows = original.num_rows
    assert scaled.slice(0, rows)[features.TIMESTAMP].equals(original[features.TIMESTAMP])
    copy = scaled.slice(rows, rows)  # the first jittered copy
    shift = pc.subtract(copy[features.TIMESTAMP], original[features.TIMESTAMP]).to_pylist()
    assert len(set(shift)) == 1 and 0 < shift[0] < scale.SECONDS_PER_DAY
    fares = [(c, o) for c, o in zip(copy[features.FARE].to_pylist(),
                                    original[features.FARE].to_pylist()) if o]
    factors = {round(c / o, 6) for c, o in fares}
    assert len(factors) == 1 and abs(factors.pop() - 1) <= scale.MAX_FACTOR_CHANGE


def test_csv_headers_are_plain_and_parquet_holds_the_same_trips(tmp_path, small_source):
    data.prepare(tmp_path / "csv", small_source, span_trips=2000)
    data.prepare(tmp_path / "parquet", small_source, span_trips=2000, file_format="parquet")
    header = (tmp_path / "csv" / "span-1" / "data.csv").open().readline().strip()
    assert header.split(",") == [*features.RAW_COLUMNS, features.LABEL]
    from_csv = pa_csv.read_csv(tmp_path / "csv" / "span-1" / "data.csv")
    from_parquet = pq.read_table(tmp_path / "parquet" / "span-1" / "data.parquet")
    assert from_parquet.num_rows == from_csv.num_rows == 2000
    assert from_parquet[features.TIMESTAMP].equals(from_csv[features.TIMESTAMP])
