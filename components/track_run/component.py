"""The TrackRun step: its spec (the run's outputs as inputs, the tracking parameters) and the
step the Kubeflow compile appends (components/track_run/executor.py builds and sends the
record)."""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from ctpipe.common.specs import parameters
from ctpipe.components.track_run.executor import (
    INPUT_TYPES,
    RECORD_KEY,
    Executor,
    TrackingRecord,
)


class TrackRunSpec(ComponentSpec):
    PARAMETERS = parameters(pipeline_name=str, experiment=str, tracking_uri=str,
                            model_name=str, serving_model_config=str, configuration=str,
                            outbox=str, timeout_seconds=float)
    INPUTS = {key: ChannelParameter(type=kind) for key, kind in INPUT_TYPES.items()}
    OUTPUTS = {RECORD_KEY: ChannelParameter(type=TrackingRecord)}


class TrackRun(base_component.BaseComponent):
    """Logs the run whose outputs are its inputs to `tracking_uri`, through `outbox`."""

    SPEC_CLASS = TrackRunSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, pipeline_name: str, experiment: str, tracking_uri: str,
                 model_name: str, serving_model_config: str, configuration: str, outbox: str,
                 timeout_seconds: float, **inputs: types.BaseChannel):
        super().__init__(TrackRunSpec(
            pipeline_name=pipeline_name, experiment=experiment, tracking_uri=tracking_uri,
            model_name=model_name, serving_model_config=serving_model_config,
            configuration=configuration, outbox=outbox, timeout_seconds=timeout_seconds,
            record=types.Channel(type=TrackingRecord), **inputs))
