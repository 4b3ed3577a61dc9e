"""The ServedModel step: its spec, its driver and the step the pipeline adds
(components/served_model/executor.py resolves and copies the served version)."""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from ctpipe.common import properties
from ctpipe.common.snapshot import SNAPSHOT_KEY, SnapshotDriver
from ctpipe.common.specs import parameters
from ctpipe.components.served_model.executor import (
    EXAMPLES_KEY,
    MODEL_KEY,
    Executor,
    snapshot_of,
)


class Driver(SnapshotDriver):
    """Records which version is served before the cache is consulted (LocalDagRunner)."""

    def snapshot(self, input_dict, exec_properties) -> str:
        examples = input_dict[EXAMPLES_KEY][0]
        return snapshot_of(exec_properties["serving_model_dir"],
                           examples.get_string_custom_property(properties.WINDOW_DIGEST))


class ServedModelSpec(ComponentSpec):
    PARAMETERS = parameters(serving_model_dir=str, optional=(SNAPSHOT_KEY,),
                            **{SNAPSHOT_KEY: str})
    INPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedModel(base_component.BaseComponent):
    """The version served from `serving_model_dir`, for the window of `examples`."""

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, examples: types.BaseChannel, serving_model_dir: str):
        super().__init__(ServedModelSpec(
            examples=examples, serving_model_dir=serving_model_dir,
            model=types.Channel(type=standard_artifacts.Model)))
