"""StatisticsGen: TFX's component (its spec, inputs and ExampleStatistics artifact) with an
executor that decodes examples on TensorFlow's parser (components/statistics_gen/executor.py)."""
from __future__ import annotations

from tfx.components import StatisticsGen as TfxStatisticsGen
from tfx.dsl.components.base import executor_spec

from ctpipe.components.statistics_gen.executor import Executor


class StatisticsGen(TfxStatisticsGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
