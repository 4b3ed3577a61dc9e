"""The single source of the model's feature names, types and label.

Pure Python on purpose: data preparation, the schema tools and the serving client import it
without paying for TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

DType = Literal["int64", "float32", "string"]
Encoding = Literal["numeric", "bucketized", "categorical"]


@dataclasses.dataclass(frozen=True)
class Feature:
    """One raw CSV column the model reads, and how the model encodes it."""

    name: str
    dtype: DType
    encoding: Encoding

    @property
    def default(self) -> int | float | str:
        """Value used when a tf.Example lacks the feature (the CSV cell was empty)."""
        return {"int64": 0, "float32": 0.0, "string": ""}[self.dtype]


FEATURES: tuple[Feature, ...] = (
    # Heavy-tailed magnitudes: log1p, then standardised.
    Feature("trip_miles", "float32", "numeric"),
    Feature("fare", "float32", "numeric"),
    Feature("trip_seconds", "int64", "numeric"),
    # Coordinates: quantile buckets (a city grid, not a linear effect).
    Feature("pickup_latitude", "float32", "bucketized"),
    Feature("pickup_longitude", "float32", "bucketized"),
    Feature("dropoff_latitude", "float32", "bucketized"),
    Feature("dropoff_longitude", "float32", "bucketized"),
    # Categories: vocabulary lookups with an out-of-vocabulary bucket, then embeddings.
    Feature("trip_start_hour", "int64", "categorical"),
    Feature("trip_start_day", "int64", "categorical"),
    Feature("trip_start_month", "int64", "categorical"),
    Feature("pickup_community_area", "int64", "categorical"),
    Feature("dropoff_community_area", "int64", "categorical"),
    Feature("dropoff_census_tract", "int64", "categorical"),
    Feature("payment_type", "string", "categorical"),
    Feature("company", "string", "categorical"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)

LABEL = "big_tipper"
# The label is derived from these two; `tips` must never be a feature (it leaks the label).
TIPS = "tips"
FARE = "fare"
BIG_TIP_FRACTION = 0.2

# Orders trips into spans; not a feature (it would let the model memorise the calendar).
TIMESTAMP = "trip_start_timestamp"

# Every column of the Chicago taxi source file; data preparation requires all of them.
RAW_COLUMNS: tuple[str, ...] = (
    "pickup_community_area", "fare", "trip_start_month", "trip_start_hour", "trip_start_day",
    "trip_start_timestamp", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
    "dropoff_longitude", "trip_miles", "pickup_census_tract", "dropoff_census_tract",
    "payment_type", "company", "trip_seconds", "dropoff_community_area", "tips",
)

# Output of the serving signature: probability that the trip's tip exceeds 20 % of the fare.
PREDICTION_KEY = "probability"
# Input of the serving signature: a batch of serialized tf.Example protos.
EXAMPLES_KEY = "examples"

assert TIPS not in FEATURE_NAMES and LABEL not in FEATURE_NAMES
assert set(FEATURE_NAMES) <= set(RAW_COLUMNS)


def is_big_tipper(tips: float | None, fare: float | None) -> int:
    """The label of TFX's taxi example: 1 when tips > 20 % of the fare; 0 when either is unknown."""
    if tips is None or fare is None:
        return 0
    return int(tips > BIG_TIP_FRACTION * fare)
