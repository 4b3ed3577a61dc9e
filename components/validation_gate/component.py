"""The ValidationGate step (its checks: components/validation_gate/executor.py).
(No `from __future__ import annotations`: TFX's @component reads the annotations as types.)
"""
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from ctpipe.components.validation_gate.executor import validate


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
    validate(examples, anomalies, schema, validated_schema, drift_report, window_statistics,
             drift_policy, sample_statistics_examples)
