"""The Pusher's component: its spec (inputs, parameters, output) and the step the pipeline adds
(components/pusher/executor.py does the push)."""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from ctpipe.common.specs import parameters
from ctpipe.components.pusher.executor import (
    EVALUATION_KEY,
    INFRA_BLESSING_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    PUSHED_MODEL_KEY,
    WINDOW_STATISTICS_KEY,
    Executor,
)


class PusherSpec(ComponentSpec):
    # `rollout` (direct | canary | shadow) is applied to `model_config`, TF Serving's model
    # config file ("" writes no labels).
    PARAMETERS = parameters(serving_model_dir=str, model_name=str, rollout=str,
                            model_config=str)
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        INFRA_BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        WINDOW_STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }
    OUTPUTS = {PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}


class Pusher(base_component.BaseComponent):
    """Pushes `model` to `serving_model_dir` when both blessings say so."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 infra_blessing: types.BaseChannel, evaluation: types.BaseChannel,
                 window_statistics: types.BaseChannel, serving_model_dir: str,
                 model_name: str, rollout: str = "direct", model_config: str = ""):
        super().__init__(PusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            evaluation=evaluation, window_statistics=window_statistics,
            serving_model_dir=serving_model_dir, model_name=model_name, rollout=rollout,
            model_config=model_config,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
