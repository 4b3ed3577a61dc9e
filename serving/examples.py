"""Taxi trips (CSV rows) as the serialized tf.Examples that `serving_default` takes."""
from __future__ import annotations

from typing import Mapping

from tensorflow.core.example import example_pb2

from models import features


def trip_to_example(row: Mapping[str, str]) -> bytes:
    """A trip as a serving client sends it: typed features, empty CSV cells left out."""
    example = example_pb2.Example()
    for feature in features.FEATURES:
        value = row.get(feature.name, "")
        if value == "":
            continue
        target = example.features.feature[feature.name]
        if feature.dtype == "string":
            target.bytes_list.value.append(value.encode())
        elif feature.dtype == "int64":
            target.int64_list.value.append(int(float(value)))
        else:
            target.float_list.value.append(float(value))
    return example.SerializeToString()
