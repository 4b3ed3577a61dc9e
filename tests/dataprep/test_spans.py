from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from ctpipe.common import features
from ctpipe.dataprep import spans as data


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _quarter(row: dict[str, str]) -> tuple[int, int]:
    when = dt.datetime.fromtimestamp(int(row[features.TIMESTAMP]), tz=dt.timezone.utc)
    return when.year, (when.month - 1) // 3


def test_spans_are_quarters_in_time_order(tmp_path, small_source):
    spans = data.prepare(tmp_path / "spans", small_source)

    source_rows = _read(small_source)
    assert [s.number for s in spans] == list(range(1, len(spans) + 1))
    assert sum(s.rows for s in spans) == len(source_rows)
    assert len(spans) == len({_quarter(r) for r in source_rows})
    previous_quarter = None
    for span in spans:
        rows = _read(tmp_path / "spans" / f"span-{span.number}" / "data.csv")
        assert len(rows) == span.rows
        quarters = {_quarter(r) for r in rows}
        assert len(quarters) == 1, "a span holds exactly one quarter"
        assert previous_quarter is None or quarters.pop() > previous_quarter
        previous_quarter = _quarter(rows[0])
        stamps = [int(r[features.TIMESTAMP]) for r in rows]
        assert stamps == sorted(stamps)


def test_every_raw_column_is_kept_and_the_label_added(tmp_path, small_source):
    data.prepare(tmp_path / "spans", small_source)
    rows = _read(tmp_path / "spans" / "span-1" / "data.csv")
    assert set(rows[0]) == set(features.RAW_COLUMNS) | {features.LABEL}
    for row in rows:
        tips, fare = float(row["tips"]), float(row["fare"])
        assert row[features.LABEL] == str(int(tips > 0.2 * fare))


def test_label_rule_matches_tfx_taxi_example():
    assert features.is_big_tipper(3.0, 10.0) == 1
    assert features.is_big_tipper(2.0, 10.0) == 0  # exactly 20 % is not "more than"
    assert features.is_big_tipper(5.0, None) == 0
    assert features.TIPS not in features.FEATURE_NAMES


def test_rerun_is_idempotent(tmp_path, small_source):
    out = tmp_path / "spans"
    first = data.prepare(out, small_source)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    second = data.prepare(out, small_source)
    assert first == second
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("header-only", "no trips"),
    ("no-fare", "lacks required column(s): fare"),
    ("bad-timestamp", "line 2: trip_start_timestamp is not an integer"),
])
def test_bad_source_gets_a_clear_error_and_writes_nothing(tmp_path, taxi_rows, csv_writer,
                                                          case, message):
    header, rows = taxi_rows
    source = tmp_path / "source.csv"
    if case == "empty":
        source.write_text("")
    elif case == "header-only":
        csv_writer(source, header, [])
    elif case == "no-fare":
        csv_writer(source, [c for c in header if c != "fare"],
                   [{k: v for k, v in r.items() if k != "fare"} for r in rows[:5]])
    elif case == "bad-timestamp":
        csv_writer(source, header, [dict(rows[0], trip_start_timestamp="yesterday")])
    out = tmp_path / "spans"
    with pytest.raises(data.DataPreparationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.prepare(out, source)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["source.csv"])


def test_failed_rerun_keeps_the_previous_spans(tmp_path, small_source):
    out = tmp_path / "spans"
    data.prepare(out, small_source)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    broken = tmp_path / "broken.csv"
    broken.write_text("fare,tips\n1,2\n")
    with pytest.raises(data.DataPreparationError):
        data.prepare(out, broken)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path, small_source):
    out = tmp_path / "spans"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(data.DataPreparationError, match="refusing to overwrite"):
        data.prepare(out, small_source)
    assert (out / "precious.txt").read_text() == "keep me"


def test_span_numbers_lists_span_folders(tmp_path):
    for name in ("span-1", "span-10", "span-2", "span-x", "other"):
        (tmp_path / name).mkdir()
    assert data.span_numbers(tmp_path) == [1, 2, 10]
