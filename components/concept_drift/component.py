"""The ConceptDrift step (its scoring and verdict: components/concept_drift/executor.py).
(No `from __future__ import annotations`: TFX's @component reads the annotations as types.)
"""
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from ctpipe.components.concept_drift.executor import assess


@component
def ConceptDrift(
    max_auc_drop: Parameter[float],
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    drift_report: InputArtifact[standard_artifacts.ExampleAnomalies],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
) -> None:
    assess(max_auc_drop, model, examples, drift_report, evaluation)
