"""Offline scoring as a pipeline of its own on Kubeflow: one `BatchScoring` step, compiled
with TFX's KubeflowV2DagRunner like the training pipeline (same image, same entry point).

Why our component and not TFX's BulkInferrer: BulkInferrer writes PredictionLog TFRecords
into an artifact folder. What is wanted is a table of key, probability and model version at a
fixed place, published only after the sanity gate, atomically, with the previous result kept
when the gate refuses. BulkInferrer has none of that, so a second step would have to read its
logs, join keys back (they are not in the logs), gate and publish. It also takes tf.Examples
from an ExampleGen, a second full pass over the input. `BatchScoring` runs exactly what
`ctpipe score` runs (ctpipe.scoring.publish), so the two cannot drift apart.

The input folder is a runtime parameter (`input_root`), set per run without recompiling; the
model is the newest pushed version under `serving_model_dir` unless `version` is set. Inputs,
the serving folder and the output must be paths the step's pod can reach (a mounted volume, as
deploy/ mounts the model store at /models).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from ctpipe.common import progress
from ctpipe.common.files import write_atomically
from ctpipe.common.specs import parameters
from ctpipe.pipeline.kubeflow.runner import pipeline_spec
from ctpipe.scoring import publish

INPUT_ROOT_PARAMETER = "input_root"
RESULT_FILE = "publication.json"


@dataclasses.dataclass(frozen=True)
class ScoringSettings:
    """The scoring pipeline's settings (paths as the step's pod sees them)."""

    pipeline_root: str
    input_root: str
    output_root: str
    serving_model_dir: str
    pipeline_name: str = "taxi-big-tipper-scoring"
    version: int = 0  # 0: the newest pushed version
    output_format: str = "parquet"
    key_column: str = ""
    beam_args: tuple[str, ...] = ("--direct_running_mode=multi_processing",
                                  "--direct_num_workers=0")


class BatchScoringSpec(ComponentSpec):
    PARAMETERS = parameters(input_root=str, output_root=str, serving_model_dir=str,
                            version=int, output_format=str, key_column=str)
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {"scores": ChannelParameter(type=standard_artifacts.InferenceResult)}


class Executor(base_beam_executor.BaseBeamExecutor):
    """Runs `ctpipe score`'s job; the artifact records what was published."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        source = publish.pushed_version(exec_properties["serving_model_dir"],
                                        exec_properties["version"] or None)
        result = publish.score(source, exec_properties["input_root"],
                               exec_properties["output_root"],
                               output_format=exec_properties["output_format"],
                               key_column=exec_properties["key_column"],
                               beam_args=self._beam_pipeline_args or ())
        record = {"folder": result.folder, "rows": result.rows,
                  "model_version": result.model_version, "gate": result.gate.figures}
        write_atomically(os.path.join(output_dict["scores"][0].uri, RESULT_FILE),
                         json.dumps(record, default=float))
        progress.note(f"BatchScoring: published {result.rows} scores of version "
                      f"{result.model_version} to {result.folder}")


class BatchScoring(base_beam_component.BaseBeamComponent):
    """Scores the CSV files under `input_root` with a pushed model; gated, published."""

    SPEC_CLASS = BatchScoringSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_root: Any, settings: ScoringSettings):
        super().__init__(BatchScoringSpec(
            input_root=input_root, output_root=settings.output_root,
            serving_model_dir=settings.serving_model_dir, version=settings.version,
            output_format=settings.output_format, key_column=settings.key_column,
            scores=types.Channel(type=standard_artifacts.InferenceResult)))


def create_scoring_pipeline(settings: ScoringSettings,
                            input_root: Any = None) -> tfx_pipeline.Pipeline:
    """The one-step pipeline; `input_root` may be a runtime parameter."""
    step = BatchScoring(input_root or settings.input_root, settings).with_id("BatchScoring")
    return tfx_pipeline.Pipeline(pipeline_name=settings.pipeline_name,
                                 pipeline_root=settings.pipeline_root, components=[step],
                                 enable_cache=False, beam_pipeline_args=list(settings.beam_args))


def compile_scoring_pipeline(settings: ScoringSettings, image: str,
                             output: str | Path) -> dict[str, Any]:
    """Writes the KFP v2 pipeline file (PipelineSpec) of the scoring pipeline in `image`;
    refuses one open-source KFP could not run, as the training pipeline's compile does."""
    parameter = data_types.RuntimeParameter(name=INPUT_ROOT_PARAMETER, ptype=str,
                                            default=settings.input_root)
    spec = pipeline_spec(create_scoring_pipeline(settings, parameter), image,
                         {INPUT_ROOT_PARAMETER: settings.input_root})
    write_atomically(str(output), json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return spec
