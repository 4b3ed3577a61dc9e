"""Stops the run when the new data does not match the curated schema, or has drifted (under
`drift_policy: stop`); otherwise reports drift and lets the run go on.

TFX 1.16's ExampleValidator only records anomalies. This step reads them and raises, so nothing
downstream (Trainer, Evaluator, Pusher) runs on bad data. It then compares the newest span's
statistics with the reference (the previous run's window) using the schema's drift comparators
(validation/drift.py): every drifted feature is one line of `ctpipe run`'s output and is
recorded on the `drift` output (custom properties and `drift.json`). Retraining on the new data
is continuous training's answer to drift, so by default the run goes on.

It passes the schema on as its output: the Trainer consumes that copy, which makes the gate a
data dependency visible in ML Metadata and on every orchestrator, rather than an ordering hint.
Once the data passed, it also profiles a sample of the window's training examples
(`window_statistics`): the Pusher keeps them with the model, as what `ctpipe monitor` compares
served requests with.
"""
from __future__ import annotations

import dataclasses
import json
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from common import progress, properties
from validation import drift

class DataValidationError(RuntimeError):
    """The examples do not match the curated schema."""


class DataDriftError(RuntimeError):
    """The newest span drifted and the drift policy is `stop`."""


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies
                   ) -> dict[str, anomalies_pb2.Anomalies]:
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact.uri, f"Split-{split}", properties.ANOMALIES_FILE)
        result[split] = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    return result


def read_statistics(artifact) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Every split's statistics, as StatisticsGen writes them."""
    return {split: statistics_pb2.DatasetFeatureStatisticsList.FromString(
                io_utils.read_bytes_file(os.path.join(artifact.uri, f"Split-{split}",
                                                      properties.STATISTICS_FILE)))
            for split in artifact_utils.decode_split_names(artifact.split_names)}


def check_drift(statistics, reference, schema, span: int, reference_spans: str,
                policy: str) -> list[drift.DriftFinding]:
    """The drift findings, each crossed one told as a progress line; raises under `stop`."""
    if not reference_spans:
        progress.note(f"drift: span {span} is the first span, nothing to compare it with")
        return []
    if not any(f.HasField("drift_comparator") for f in schema.feature):
        progress.note("drift: not checked, the schema has no drift comparators "
                      "(schemas/schema.pbtxt, docs/drift.md)")
        return []
    findings = drift.drift_findings(read_statistics(statistics), read_statistics(reference),
                                    schema)
    crossed = [f for f in findings if f.crossed]
    for finding in crossed:
        progress.note(drift.format_finding(finding))
    if not crossed:
        progress.note(f"drift: none, span {span} against spans {reference_spans} "
                      f"({len(findings)} comparisons within their thresholds)")
    elif policy == "stop":
        names = ", ".join(sorted({f"'{f.feature}'" for f in crossed}))
        raise DataDriftError(f"span {span} drifted from spans {reference_spans} in feature(s) "
                             f"{names} (drift_policy: stop); run stopped before training")
    return findings


def record_drift(artifact, findings: list[drift.DriftFinding]) -> None:
    crossed = sorted({f.feature for f in findings if f.crossed})
    artifact.set_string_custom_property(properties.DRIFTED_FEATURES, ",".join(crossed))
    artifact.set_string_custom_property(properties.DRIFT, "; ".join(
        drift.format_finding(f) for f in findings if f.crossed))
    io_utils.write_string_file(os.path.join(artifact.uri, properties.DRIFT_FILE), json.dumps(
        [dataclasses.asdict(f) for f in findings], indent=1))
