"""Turns the Chicago taxi trips file into spans: one folder per calendar quarter.

`DIR/span-N/data.csv` holds the trips of the N-th quarter (1 = the oldest present), ordered by
`trip_start_timestamp`, with every raw column plus the label column. The output is written to a
temporary folder and swapped in whole, so a failure never leaves a half-written DIR.

Real quarters hold 1-9 M trips; the shipped file holds 15 k in all. `span_trips=N` makes spans
of real size from it (dataprep/scale.py): each quarter's trips repeated to N, jittered. The
`parquet` format writes `data.parquet` instead, as a table export would.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from ctpipe.common import features
from ctpipe.common.errors import UserError
from ctpipe.common.policies import DATA_FORMATS
from ctpipe.dataprep import scale as scaling

log = logging.getLogger(__name__)

SPAN_DIR_PREFIX = "span-"
SPAN_FILE = "data.csv"
MANIFEST = "manifest.json"
PARQUET_FILE = "data.parquet"
# Bump when the output format changes, so that re-running rewrites older outputs.
FORMAT_VERSION = 2


class DataPreparationError(UserError, ValueError):
    """The source cannot be turned into spans; nothing was written."""


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    quarter: str  # e.g. "2013-Q1"
    rows: int


def bundled_source() -> Path:
    """The taxi trips CSV shipped inside the installed tfx package (found without importing tfx)."""
    spec = importlib.util.find_spec("tfx")
    if spec is None or not spec.submodule_search_locations:
        raise DataPreparationError("tfx is not installed; pass --source CSV")
    root = Path(list(spec.submodule_search_locations)[0])
    return root / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"


def _quarter(timestamp: int) -> str:
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_source(source: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not source.is_file():
        raise DataPreparationError(f"source file not found: {source}")
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise DataPreparationError(f"source file is empty: {source}")
        missing = [c for c in features.RAW_COLUMNS if c not in header]
        if missing:
            raise DataPreparationError(
                f"source {source} lacks required column(s): {', '.join(missing)}")
        if features.LABEL in header:
            raise DataPreparationError(
                f"source {source} already has a '{features.LABEL}' column; pass the raw trips")
        rows = list(reader)
    if not rows:
        raise DataPreparationError(f"source file has a header but no trips: {source}")
    return list(header), rows


def _label(row: dict[str, str], line: int) -> int:
    try:
        return features.is_big_tipper(
            _optional_float(row[features.TIPS]), _optional_float(row[features.FARE]))
    except ValueError as err:
        raise DataPreparationError(f"line {line}: tips/fare are not numbers: {err}") from None


def split_into_spans(rows: list[dict[str, str]]) -> list[tuple[str, list[dict[str, str]]]]:
    """Groups rows by calendar quarter (UTC), oldest first, each ordered by timestamp."""
    by_quarter: dict[str, list[tuple[int, int, dict[str, str]]]] = defaultdict(list)
    for index, row in enumerate(rows):
        line = index + 2  # header is line 1
        text = row[features.TIMESTAMP]
        try:
            timestamp = int(text)
        except ValueError:
            raise DataPreparationError(
                f"line {line}: {features.TIMESTAMP} is not an integer: {text!r}") from None
        labelled = dict(row)
        labelled[features.LABEL] = str(_label(row, line))
        by_quarter[_quarter(timestamp)].append((timestamp, index, labelled))
    return [
        (quarter, [row for _, _, row in sorted(by_quarter[quarter], key=lambda t: t[:2])])
        for quarter in sorted(by_quarter)
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def prepare(out_dir: Path, source: Path | None = None, span_trips: int = 0,
            file_format: str = "csv") -> list[Span]:
    """Writes the spans of `source` to `out_dir` (0 `span_trips`: each quarter's trips as
    they are; N: repeated to N trips, jittered) in `file_format`; a no-op when they are
    already there."""
    if span_trips < 0:
        raise DataPreparationError(f"span trips must be 0 (as shipped) or positive, "
                                   f"got {span_trips}")
    if file_format not in DATA_FORMATS:
        raise DataPreparationError(f"file format must be one of {', '.join(DATA_FORMATS)}, "
                                   f"got {file_format!r}")
    source = Path(source) if source else bundled_source()
    source_hash = _sha256(source) if source.is_file() else None
    manifest = read_manifest(out_dir) if out_dir.is_dir() else None
    if (manifest and manifest.get("source_sha256") == source_hash
            and manifest.get("format_version") == FORMAT_VERSION
            and manifest.get("span_trips") == span_trips and manifest.get("file_format") == file_format):
        log.info("spans in %s are up to date with %s", out_dir, source)
        return [Span(**s) for s in manifest["spans"]]
    if out_dir.exists() and any(out_dir.iterdir()) and manifest is None:
        raise DataPreparationError(
            f"{out_dir} is not empty and holds no {MANIFEST}: refusing to overwrite it")

    header, rows = read_source(source)
    spans = split_into_spans(rows)
    columns = header + [features.LABEL]

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        written = []
        for number, (quarter, span_rows) in enumerate(spans, start=1):
            span_dir = staging / f"{SPAN_DIR_PREFIX}{number}"
            span_dir.mkdir()
            if not span_trips and file_format == "csv":
                with (span_dir / SPAN_FILE).open("w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(span_rows)
                trips = len(span_rows)
            else:
                trips = scaling.write_span(span_rows, columns, span_trips or len(span_rows),
                                           number,
                                           span_dir / (SPAN_FILE if file_format == "csv"
                                                       else PARQUET_FILE))
            written.append(Span(number, quarter, trips))
        (staging / MANIFEST).write_text(json.dumps({
            "format_version": FORMAT_VERSION,
            "source": str(source),
            "source_sha256": source_hash,
            "span_trips": span_trips,
            "file_format": file_format,
            "spans": [dataclasses.asdict(s) for s in written],
        }, indent=2) + "\n")
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %d spans (%d trips) to %s", len(written), sum(s.rows for s in written),
             out_dir)
    return written


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replaces out_dir by staging with renames, so readers see the old or the new spans."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    retired = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.replace(out_dir, retired)
    os.replace(staging, out_dir)
    shutil.rmtree(retired)


def span_numbers(data_dir: Path) -> list[int]:
    """Span numbers present in a data folder, ascending."""
    numbers = []
    for child in Path(data_dir).glob(f"{SPAN_DIR_PREFIX}*"):
        suffix = child.name[len(SPAN_DIR_PREFIX):]
        if child.is_dir() and suffix.isdigit():
            numbers.append(int(suffix))
    return sorted(numbers)
