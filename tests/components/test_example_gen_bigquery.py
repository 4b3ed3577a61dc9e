"""The per-span query of the public taxi table and the BigQueryExampleGen it configures (no
BigQuery here: the query text and TFX's component built from it are what can be checked)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from ctpipe.common import features
from ctpipe.components.example_gen.bigquery import (
    PUBLIC_TABLE,
    big_query_example_gen,
    quarter_bounds,
    span_query,
)
from ctpipe.dataprep import spans as data


@pytest.mark.parametrize("span, begin, end", [
    (1, dt.date(2013, 1, 1), dt.date(2013, 4, 1)),
    (4, dt.date(2013, 10, 1), dt.date(2014, 1, 1)),
    (16, dt.date(2016, 10, 1), dt.date(2017, 1, 1)),
    (33, dt.date(2021, 1, 1), dt.date(2021, 4, 1)),
])
def test_spans_are_the_quarters_data_prepare_numbers(span, begin, end):
    assert quarter_bounds(span) == (begin, end)


def test_span_numbers_match_the_shipped_sample(tmp_path, small_source):
    for span in data.prepare(tmp_path / "spans", small_source):
        begin, _ = quarter_bounds(span.number, "2013-Q1")
        assert span.quarter == f"{begin.year}-Q{(begin.month - 1) // 3 + 1}"


def test_the_query_selects_the_span_folders_columns_for_one_quarter():
    query = span_query(16)
    selected = re.findall(r" AS (\w+)", query)
    assert selected == [*features.RAW_COLUMNS, features.LABEL]
    assert f"FROM `{PUBLIC_TABLE}`" in query
    assert ("WHERE trip_start_timestamp >= TIMESTAMP('2016-10-01') "
            "AND trip_start_timestamp < TIMESTAMP('2017-01-01')") in query
    assert "UNIX_SECONDS(trip_start_timestamp) AS trip_start_timestamp" in query
    assert "IF(IFNULL(tips > 0.2 * fare, FALSE), 1, 0) AS big_tipper" in query


def test_a_span_must_be_explicit():
    with pytest.raises(ValueError, match="must be explicit"):
        span_query(0)


def test_tfx_s_big_query_example_gen_gets_the_query_and_our_split():
    component = big_query_example_gen(5, table="project.dataset.trips")
    config = json.loads(component.exec_properties["input_config"])
    assert config["splits"] == [{"name": "single_split", "pattern": span_query(
        5, table="project.dataset.trips")}]
    splits = json.loads(component.exec_properties["output_config"])["split_config"]["splits"]
    assert [(s["name"], s["hash_buckets"]) for s in splits] == [("train", 4), ("eval", 1)]
    assert component.outputs["examples"].type_name == "Examples"
