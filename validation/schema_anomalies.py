"""Anomalies of data against the curated schema, told in readable lines.

TensorFlow-free (tensorflow_metadata's protos only): the validation gate's error message and
`ctpipe report` tell them alike.
"""
from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One readable line per anomaly: `feature 'x' (splits): short: description`."""
    splits_of: dict[tuple[str, str, str], list[str]] = {}
    for split, anomalies in sorted(anomalies_by_split.items()):
        found = [(f"feature '{name}'", info)
                 for name, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(("dataset", anomalies.dataset_anomaly_info))
        for subject, info in found:
            key = (subject, info.short_description, info.description)
            splits_of.setdefault(key, []).append(split)
    return [f"{subject} ({', '.join(splits)}): {short}: {description}"
            for (subject, short, description), splits in splits_of.items()]
