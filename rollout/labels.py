"""Label files (`--labels CSV`): the outcomes of served trips, keyed so that they can be joined
to the answers in the prediction log: by the request id the gateway returned, or, as the
explicit fallback, by the trips' feature values."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

from ctpipe.common import features
from ctpipe.serving.client import protos, version_labels
from ctpipe.serving.client.examples import row_to_example

REQUEST_ID_COLUMN = "request_id"
EXAMPLE_COLUMN = "example"  # the trip's position in its request (0 when absent)
BY_REQUEST_ID, BY_FEATURES = "request id", "feature values"


@dataclasses.dataclass
class Labels:
    """Labelled trips keyed by (request id, position in the request), or, as the explicit
    fallback, by their feature values (equal trips collide: see `read_labels`)."""

    join: str  # BY_REQUEST_ID or BY_FEATURES
    by_key: dict[tuple, int]
    matched: set = dataclasses.field(default_factory=set)

    def describe(self) -> str:
        text = (f"labels joined by {self.join}: {len(self.matched)} of {len(self.by_key)} "
                "labelled trips matched a logged answer")
        if self.join == BY_FEATURES:
            text += (" (fallback --join-on-features: equal trips collide, so the two sides "
                     "may be scored on other trips than they answered)")
        return text


def trip_key(example: Any) -> tuple:
    """A trip's model features and values: the fallback join key between a logged request
    and a labelled row (both go through a tf.Example, so floats are rounded alike)."""
    entries = example.features.feature
    key = []
    for name in features.FEATURE_NAMES:
        feature = entries[name] if name in entries else None
        kind = feature.WhichOneof("kind") if feature is not None else None
        key.append((name, tuple(getattr(feature, kind).value) if kind else ()))
    return tuple(key)


def _label_of(row: dict[str, str]) -> int | None:
    if row.get(features.LABEL, "") != "":
        return int(float(row[features.LABEL]))
    if row.get(features.TIPS, "") != "" and row.get(features.FARE, "") != "":
        return features.is_big_tipper(float(row[features.TIPS]), float(row[features.FARE]))
    return None


def read_labels(path: Path, join_on_features: bool = False) -> Labels:
    """Labelled trips from a CSV with `big_tipper` (or `tips` and `fare`): by default keyed by
    the `request_id` the gateway returned (and `example`, the trip's position in a request of
    several; 0 when absent); with `join_on_features`, by the trip's feature values instead
    (for data that kept no request id)."""
    by_key: dict[tuple, int] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not join_on_features and REQUEST_ID_COLUMN not in (reader.fieldnames or ()):
            raise version_labels.ModelConfigError(
                f"{path} has no '{REQUEST_ID_COLUMN}' column: labels are joined to logged "
                f"answers by the request id the gateway returned (x-request-id); for data "
                "without one, --join-on-features joins by feature values")
        for number, row in enumerate(reader, start=2):
            label = _label_of(row)
            if label is None:
                continue
            if join_on_features:
                example = protos.Example.FromString(row_to_example(row, f"{path} row {number}"))
                by_key[trip_key(example)] = label
            elif row[REQUEST_ID_COLUMN]:
                position = row.get(EXAMPLE_COLUMN) or "0"
                try:
                    by_key[(row[REQUEST_ID_COLUMN], int(position))] = label
                except ValueError:
                    raise version_labels.ModelConfigError(
                        f"{path} row {number}: {EXAMPLE_COLUMN} must be a whole number, got "
                        f"{position!r}") from None
    return Labels(BY_FEATURES if join_on_features else BY_REQUEST_ID, by_key)
