"""A span of the public Chicago taxi table in BigQuery, for TFX's BigQueryExampleGen.

The whole public table (`bigquery-public-data.chicago_taxi_trips.taxi_trips`, about 200 M trips,
one row per trip) is where the real data lives. A span is a calendar quarter, numbered from
`first_quarter` (span 1) as `ctpipe data prepare` numbers the shipped sample's quarters. The
query selects the columns the span folders hold, under the same names and types (the raw
columns of ctpipe.common.features plus the label), so the rest of the pipeline cannot tell the
sources apart. TFX's own span placeholders in queries count days since 1970, not quarters, so
the query names its quarter's bounds itself.
"""
from __future__ import annotations

import datetime as dt

from tfx.extensions.google_cloud_big_query.example_gen.component import BigQueryExampleGen
from tfx.proto import example_gen_pb2

from ctpipe.common import features
from ctpipe.components.example_gen.component import output_config

PUBLIC_TABLE = "bigquery-public-data.chicago_taxi_trips.taxi_trips"
FIRST_QUARTER = "2013-Q1"

# Each output column from the table's: most are the same column, the calendar ones derived
# from the start time as the shipped file has them (BigQuery's DAYOFWEEK: 1 is Sunday).
_COLUMNS = {
    "trip_start_month": "EXTRACT(MONTH FROM trip_start_timestamp)",
    "trip_start_hour": "EXTRACT(HOUR FROM trip_start_timestamp)",
    "trip_start_day": "EXTRACT(DAYOFWEEK FROM trip_start_timestamp)",
    features.TIMESTAMP: "UNIX_SECONDS(trip_start_timestamp)",
}


def quarter_bounds(span: int, first_quarter: str = FIRST_QUARTER) -> tuple[dt.date, dt.date]:
    """[first day, first day of the next quarter) of span `span`."""
    if span < 1:
        raise ValueError(f"a BigQuery span must be explicit (1 is {first_quarter}), got {span}")
    year, quarter = first_quarter.split("-Q")
    index = int(year) * 4 + int(quarter) - 1 + span - 1
    begin = dt.date(index // 4, index % 4 * 3 + 1, 1)
    after = index + 1
    return begin, dt.date(after // 4, after % 4 * 3 + 1, 1)


def span_query(span: int, table: str = PUBLIC_TABLE, first_quarter: str = FIRST_QUARTER) -> str:
    """The trips of span `span` with the span folders' columns and label."""
    begin, end = quarter_bounds(span, first_quarter)
    selected = [f"{_COLUMNS.get(name, name)} AS {name}" for name in features.RAW_COLUMNS]
    label = (f"IF(IFNULL({features.TIPS} > {features.BIG_TIP_FRACTION} * {features.FARE}, "
             f"FALSE), 1, 0) AS {features.LABEL}")
    return (f"SELECT {', '.join(selected + [label])}\n"
            f"FROM `{table}`\n"
            f"WHERE trip_start_timestamp >= TIMESTAMP('{begin.isoformat()}') "
            f"AND trip_start_timestamp < TIMESTAMP('{end.isoformat()}')")


def big_query_example_gen(span: int, table: str = PUBLIC_TABLE,
                          first_quarter: str = FIRST_QUARTER):
    """TFX's BigQueryExampleGen for one span, split as the file-based ExampleGen splits."""
    query = span_query(span, table, first_quarter)
    return BigQueryExampleGen(
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern=query)]),
        output_config=output_config())
