"""Spans of real size made from the shipped trips, deterministically and without a download.

A real quarter holds 1-9 M trips; the shipped sample holds 170 to 1,300 a quarter. A span of
N trips holds its quarter's trips repeated until N: copy 0 as shipped, every other copy with the
fare, the tips, the miles and the seconds multiplied by one factor of that copy (within
±5 %, so the label, tips > 20 % of the fare, is kept but for rounding at exactly 20 %) and
the start time moved by less than a day. Copies are written a block at a time, so memory stays
flat whatever N is.
"""
from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ctpipe.common import features

# Columns scaled together by a copy's factor; fare and tips together keep the label.
SCALED = (features.FARE, features.TIPS, "trip_miles", "trip_seconds")
MAX_FACTOR_CHANGE = 0.05
SECONDS_PER_DAY = 86_400
# Rows per written block: large enough for Arrow's writers, small enough for flat memory.
BLOCK_ROWS = 200_000

_FEATURE_TYPES = {"int64": pa.int64(), "float32": pa.float64(), "string": pa.string()}


def column_types() -> dict[str, pa.DataType]:
    """The type of every column of a span file: the model's features as ctpipe.common.features
    declares them, the other raw columns by what they hold."""
    types = {f.name: _FEATURE_TYPES[f.dtype] for f in features.FEATURES}
    types.update({features.TIMESTAMP: pa.int64(), features.TIPS: pa.float64(),
                  "pickup_census_tract": pa.int64(), features.LABEL: pa.int64()})
    return types


def _as_table(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> pa.Table:
    """The span's rows (CSV text) as a typed table; an empty cell becomes null."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    types = column_types()
    return pa_csv.read_csv(
        io.BytesIO(text.getvalue().encode()),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: types[name] for name in columns if name in types},
            strings_can_be_null=True))


def jittered_copy(table: pa.Table, copy: int, span: int) -> pa.Table:
    """Copy `copy` of a span's table (0: unchanged), seeded by (span, copy)."""
    if copy == 0:
        return table
    rng = np.random.default_rng([span, copy])
    factor = 1.0 + rng.uniform(-MAX_FACTOR_CHANGE, MAX_FACTOR_CHANGE)
    shift = int(rng.integers(1, SECONDS_PER_DAY))
    for name in SCALED:
        column = table.column(name)
        scaled = pc.multiply(column.cast(pa.float64()), factor)
        if pa.types.is_integer(column.type):
            scaled = pc.round(scaled).cast(column.type)
        table = table.set_column(table.schema.get_field_index(name), name, scaled)
    index = table.schema.get_field_index(features.TIMESTAMP)
    table = table.set_column(index, features.TIMESTAMP,
                             pc.add(table.column(features.TIMESTAMP), shift))
    # The label of the scaled values (features.is_big_tipper's rule): a tip of exactly a fifth
    # of the fare may round to either side of it.
    label = pc.fill_null(pc.greater(table.column(features.TIPS), pc.multiply(
        table.column(features.FARE), features.BIG_TIP_FRACTION)), False)
    index = table.schema.get_field_index(features.LABEL)
    return table.set_column(index, features.LABEL, label.cast(pa.int64()))


def write_span(rows: Sequence[dict[str, str]], columns: Sequence[str], trips: int, span: int,
               path: Path) -> int:
    """Writes `trips` trips, copies of the span's rows (the last one cut short), to `path`
    (.csv or .parquet); returns the number of trips written."""
    table = _as_table(rows, columns)
    if table.num_rows == 0:
        raise ValueError(f"span {span} has no trips to repeat")
    copies = -(-trips // table.num_rows)
    copies_per_block = max(1, BLOCK_ROWS // table.num_rows)
    written = 0
    with contextlib.ExitStack() as stack:
        if path.suffix == ".parquet":
            writer = stack.enter_context(pq.ParquetWriter(path, table.schema,
                                                          compression="snappy"))
        else:
            # The header unquoted, as the shipped file has it: TFX's CsvExampleGen splits the
            # header line on commas and would keep Arrow's quotes in the column names.
            path.write_text(",".join(table.schema.names) + "\n")
            sink = stack.enter_context(path.open("ab"))
            writer = stack.enter_context(pa_csv.CSVWriter(
                sink, table.schema, write_options=pa_csv.WriteOptions(include_header=False)))
        for first in range(0, copies, copies_per_block):
            block = pa.concat_tables([jittered_copy(table, copy, span) for copy in
                                      range(first, min(first + copies_per_block, copies))])
            block = block.slice(0, trips - written)
            writer.write_table(block)
            written += block.num_rows
    return written
