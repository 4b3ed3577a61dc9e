"""TFX's Evaluator, told that an empty baseline is no baseline.

The pipeline's ServedModel step always outputs a Model artifact (Kubeflow registers one for every
declared output), empty when nothing is served yet. TFX's Evaluator takes any baseline artifact
as a model to load; this executor drops an empty one first, so the first run is judged by the
value thresholds alone, as TFX does without a baseline. Everything else is TFX's Evaluator.
"""
from __future__ import annotations

from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import path_utils

BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        baselines = [model for model in input_dict.get(BASELINE_KEY, [])
                     if fileio.exists(path_utils.serving_model_path(model.uri))]
        super().Do({**input_dict, BASELINE_KEY: baselines}, output_dict, exec_properties)
