"""The Evaluator step: TFX's Evaluator with the executor that drops an empty baseline
(components/evaluator/executor.py)."""
from __future__ import annotations

from tfx.components.evaluator.component import Evaluator
from tfx.dsl.components.base import executor_spec

from ctpipe.components.evaluator.executor import Executor


class ServedBaselineEvaluator(Evaluator):
    """Evaluator whose baseline may be the ServedModel step's empty artifact."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
