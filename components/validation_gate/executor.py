"""Stops the run when the new data does not match the curated schema, or has drifted (under
`drift_policy: stop`); otherwise reports drift and lets the run go on.

TFX 1.16's ExampleValidator only records anomalies. This step reads them and raises, so nothing
downstream (Trainer, Evaluator, Pusher) runs on bad data. It then compares the newest span's
sampled rows with the earlier spans of its window, thresholds calibrated to the sample sizes and
to the history's own spread (validation/calibrated_drift.py): every drifted feature is one line
of `ctpipe run`'s output and is
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

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from ctpipe.common import progress, properties
from ctpipe.common.policies import DRIFT_POLICIES
from ctpipe.common.window import MANIFEST_FILE, WindowManifest
from ctpipe.components.curated_schema.executor import SCHEMA_FILE, parse_schema
from ctpipe.validation import calibrated_drift
from ctpipe.validation.samples import first_records, write_sample_statistics
from ctpipe.validation.schema_anomalies import describe_anomalies
from ctpipe.validation.statistics_view import statistics_schema


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


# How much of each span the drift check reads (validation/calibrated_drift.py): the newest
# span's first rows, and a share of each earlier span's, so a large history costs a bounded
# read. Each earlier span also stands alone, as part of the history's own spread.
NEWEST_SAMPLE_ROWS = 20_000
OLDER_SAMPLE_ROWS_PER_SPAN = 2_000
OLDER_SAMPLE_ROWS = 40_000


def window_samples(window: WindowManifest, schema) -> list:
    """The sampled training rows of each span of the window (calibrated_drift.Sample),
    oldest first."""
    kinds = {name: kind for name, (kind, _) in calibrated_drift.compared_features(
        schema).items()}
    older = window.older
    quota = min(OLDER_SAMPLE_ROWS_PER_SPAN, OLDER_SAMPLE_ROWS // max(len(older), 1))
    samples = [calibrated_drift.sample_of(
        first_records(entry.paths(properties.SAMPLE_SPLIT), quota), kinds) for entry in older]
    samples.append(calibrated_drift.sample_of(
        first_records(window.newest.paths(properties.SAMPLE_SPLIT), NEWEST_SAMPLE_ROWS), kinds))
    return samples


def check_drift(window: WindowManifest, schema, policy: str) -> list:
    """The calibrated drift findings, each crossed one told as a progress line; raises under
    `stop`."""
    span = window.newest.span
    if not window.older:
        progress.note(f"drift: span {span} is the first span, nothing to compare it with")
        return []
    if not any(f.HasField("drift_comparator") for f in schema.feature):
        progress.note("drift: not checked, the schema has no drift comparators "
                      "(schemas/schema.pbtxt, docs/drift.md)")
        return []
    reference_spans = f"{window.older[0].span}-{window.older[-1].span}"
    findings = calibrated_drift.calibrated_findings(window_samples(window, schema), schema)
    crossed = [f for f in findings if f.crossed]
    for finding in crossed:
        progress.note(finding.describe())
    if not crossed:
        progress.note(f"drift: none, span {span} against spans {reference_spans} "
                      f"({len(findings)} comparisons within their thresholds)")
    elif policy == "stop":
        names = ", ".join(sorted({f"'{f.feature}'" for f in crossed}))
        raise DataDriftError(f"span {span} drifted from spans {reference_spans} in feature(s) "
                             f"{names} (drift_policy: stop); run stopped before training")
    return findings


def record_drift(artifact, findings: list) -> None:
    """Every score of the run, crossed or not: on the artifact (ML Metadata) and drift.json."""
    crossed = sorted({f.feature for f in findings if f.crossed})
    artifact.set_string_custom_property(properties.DRIFTED_FEATURES, ",".join(crossed))
    artifact.set_string_custom_property(properties.DRIFT, "; ".join(
        f.describe() for f in findings if f.crossed))
    artifact.set_string_custom_property(properties.DRIFT_SCORES, json.dumps(
        {f.label: [round(f.score, 4), round(f.threshold, 4)] for f in findings}))
    io_utils.write_string_file(os.path.join(artifact.uri, properties.DRIFT_FILE), json.dumps(
        [dataclasses.asdict(f) for f in findings], indent=1))


def validate(examples: standard_artifacts.Examples,
             anomalies: standard_artifacts.ExampleAnomalies, schema: standard_artifacts.Schema,
             validated_schema: standard_artifacts.Schema,
             drift_report: standard_artifacts.ExampleAnomalies,
             window_statistics: standard_artifacts.ExampleStatistics, drift_policy: str,
             sample_statistics_examples: int) -> None:
    """Raises on anomalies (and on drift under `stop`); otherwise records the drift, profiles
    a sample of the window and passes the schema on."""
    if drift_policy not in DRIFT_POLICIES:
        raise ValueError(f"drift_policy must be one of {DRIFT_POLICIES}, got {drift_policy!r}")
    span = examples.get_int_custom_property(properties.SPAN)
    problems = describe_anomalies(read_anomalies(anomalies))
    if problems:
        window = examples.get_string_custom_property(properties.WINDOW_SPANS)
        raise DataValidationError(
            f"span {span} (window {window}) does not match the curated schema; run stopped "
            "before training. " + "; ".join(problems))
    schema_path = os.path.join(schema.uri, SCHEMA_FILE)
    curated = io_utils.read_string_file(schema_path)
    window = WindowManifest.from_json(
        io_utils.read_string_file(os.path.join(examples.uri, MANIFEST_FILE)))
    record_drift(drift_report, check_drift(window, parse_schema(curated), drift_policy))
    write_sample_statistics(window_statistics, window.files(properties.SAMPLE_SPLIT),
                            sample_statistics_examples, statistics_schema(curated),
                            f"spans {window.span_range}")
    window_statistics.split_names = artifact_utils.encode_split_names([properties.SAMPLE_SPLIT])
    window_statistics.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
    fileio.makedirs(validated_schema.uri)
    fileio.copy(schema_path, os.path.join(validated_schema.uri, SCHEMA_FILE))
