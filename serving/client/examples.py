"""Raw trip rows (CSV strings or JSON values) -> serialized tf.Examples of the model's features.

The one place that turns a row into a tf.Example, with the feature names and types of
`common/features.py`: the client sends these to the server; with `empty_lists` it writes the
layout CsvExampleGen writes (the training files of tests and benchmarks,
`bench.trips.write_examples`). Free of TensorFlow (the Example class comes from
`ctpipe.serving.client.protos`).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ctpipe.common import features
from ctpipe.serving.client import protos
from ctpipe.serving.client.errors import ExampleError

_COLUMNS = tuple((f.name, f.dtype) for f in features.FEATURES)
_LABEL_COLUMN = (features.LABEL, "int64")
_VALUE_LISTS = {"string": "bytes_list", "int64": "int64_list", "float32": "float_list"}


def _int_value(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(number)


def _float_value(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def row_to_example(row: Mapping[str, Any], row_name: str = "row", *, with_label: bool = False,
                   empty_lists: bool = False,
                   columns: Sequence[tuple[str, str]] | None = None) -> bytes:
    """One row -> a serialized tf.Example of the model's features (and the label if asked), or
    of other `columns` given as (name, dtype) for a model with other inputs.

    Columns that are not features (tips, timestamps; the label unless `with_label`) are
    ignored, so rows of the original trips file can be sent as they are. An empty cell or null
    leaves the feature out, as clients send it (the model then uses the feature's default);
    with `empty_lists` it becomes an empty value list, as CsvExampleGen writes it, and every
    column must be present. ExampleError names the row and column of a bad or missing cell.
    """
    example = protos.Example()
    present = 0
    wanted = tuple(columns) if columns is not None else _COLUMNS
    for name, dtype in wanted + ((_LABEL_COLUMN,) if with_label else ()):
        if name not in row and (empty_lists or (with_label and name == features.LABEL)):
            raise ExampleError(f"{row_name} has no column '{name}'")
        value = row.get(name)
        if value is None or value == "":
            if empty_lists:
                getattr(example.features.feature[name], _VALUE_LISTS[dtype]).SetInParent()
            continue
        values = getattr(example.features.feature[name], _VALUE_LISTS[dtype]).value
        try:
            if dtype == "string":
                values.append(str(value).encode())
            elif dtype == "int64":
                values.append(_int_value(str(value)))
            else:
                values.append(_float_value(value))
        except (TypeError, ValueError) as err:
            raise ExampleError(f"{row_name}, column '{name}' ({dtype}): {err}") from None
        present += 1
    if present == 0 and not empty_lists:
        raise ExampleError(f"{row_name} has none of the model's features "
                           f"({', '.join(features.FEATURE_NAMES)})")
    return example.SerializeToString()


def rows_to_examples(rows: Sequence[Mapping[str, Any]], source: str = "input") -> list[bytes]:
    """Rows -> serialized tf.Examples; errors name `source` and the 1-based row number."""
    return [row_to_example(row, f"{source} row {index + 1}") for index, row in enumerate(rows)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows from a CSV file with a header, or a JSON file holding a list of objects (or TF
    Serving's REST form `{"instances": [...]}`)."""
    if not path.is_file():
        raise ExampleError(f"input file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ExampleError(f"{path} is not valid JSON: {err}") from None
        if isinstance(data, Mapping) and "instances" in data:
            data = data["instances"]
        if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
            raise ExampleError(f"{path} must hold a list of objects (one per trip) "
                               "or {\"instances\": [...]}")
        rows = [dict(row) for row in data]
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    if not rows:
        raise ExampleError(f"{path} holds no rows")
    return rows
