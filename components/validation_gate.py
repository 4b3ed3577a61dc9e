"""Stops the run when the new data has anomalies against the curated schema.

TFX 1.16's ExampleValidator only records anomalies. This step reads them and raises, so nothing
downstream (Trainer, Evaluator, Pusher) runs on bad data. It passes the schema on as its output:
the Trainer consumes that copy, which makes the gate a data dependency visible in ML Metadata
and on every orchestrator, rather than an ordering hint.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components.window_example_gen import WINDOW_SPANS_PROPERTY

# ExampleGen records the span as a custom property in TFX 1.16.
SPAN_PROPERTY = "span"

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataValidationError(RuntimeError):
    """The examples do not match the curated schema."""


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One readable line per anomaly: `feature 'x' (splits): short: description`."""
    splits_of: dict[tuple[str, str, str], list[str]] = {}
    for split, anomalies in sorted(anomalies_by_split.items()):
        found = [(f"feature '{name}'", info) for name, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(("dataset", anomalies.dataset_anomaly_info))
        for subject, info in found:
            key = (subject, info.short_description, info.description)
            splits_of.setdefault(key, []).append(split)
    return [f"{subject} ({', '.join(splits)}): {short}: {description}"
            for (subject, short, description), splits in splits_of.items()]


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies) -> dict[str, anomalies_pb2.Anomalies]:
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE)
        result[split] = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    return result


@component
def ValidationGate(
    examples: InputArtifact[standard_artifacts.Examples],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[standard_artifacts.Schema],
    validated_schema: OutputArtifact[standard_artifacts.Schema],
) -> None:
    problems = describe_anomalies(read_anomalies(anomalies))
    if problems:
        window = examples.get_string_custom_property(WINDOW_SPANS_PROPERTY)
        raise DataValidationError(
            f"span {examples.get_int_custom_property(SPAN_PROPERTY)} (window {window}) does not "
            "match the curated schema; run stopped before training. "
            + "; ".join(problems))
    fileio.copy(os.path.join(schema.uri, SCHEMA_FILE),
                os.path.join(validated_schema.uri, SCHEMA_FILE))
