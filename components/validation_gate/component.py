"""The ValidationGate step (its checks: components/validation_gate/executor.py).
(No `from __future__ import annotations`: TFX's @component reads the annotations as types.)
"""
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from ctpipe.common import properties
from ctpipe.common.policies import DRIFT_POLICIES
from ctpipe.common.window import MANIFEST_FILE, WindowManifest
from ctpipe.components.curated_schema.executor import SCHEMA_FILE, parse_schema
from ctpipe.components.validation_gate.executor import (
    DataValidationError,
    check_drift,
    read_anomalies,
    record_drift,
)
from ctpipe.validation.samples import write_sample_statistics
from ctpipe.validation.schema_anomalies import describe_anomalies
from ctpipe.validation.statistics_view import statistics_schema


@component
def ValidationGate(
    examples: InputArtifact[standard_artifacts.Examples],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[standard_artifacts.Schema],
    validated_schema: OutputArtifact[standard_artifacts.Schema],
    drift_report: OutputArtifact[standard_artifacts.ExampleAnomalies],
    window_statistics: OutputArtifact[standard_artifacts.ExampleStatistics],
    drift_policy: Parameter[str] = "warn",
    sample_statistics_examples: Parameter[int] = 3000,
) -> None:
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
