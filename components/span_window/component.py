"""SpanWindow: the training window over the span ExampleGen ingested and the stored earlier
spans (components/span_window/executor.py)."""
from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from ctpipe.common.snapshot import SNAPSHOT_KEY, SnapshotDriver
from ctpipe.common.specs import parameters
from ctpipe.components.span_window.executor import (
    EVAL_EXAMPLES_KEY,
    EXAMPLES_KEY,
    REFERENCE_STATISTICS_KEY,
    WINDOW_EXAMPLES_KEY,
    Executor,
    snapshot_of,
)


class Driver(SnapshotDriver):
    """Records what the span index and the data folder hold before the cache is consulted
    (LocalDagRunner)."""

    def snapshot(self, input_dict: dict[str, list[Any]], exec_properties: dict[str, Any]) -> str:
        new = input_dict[EXAMPLES_KEY][0]
        return snapshot_of(exec_properties,
                           new.get_int_custom_property(example_gen_utils.SPAN_PROPERTY_NAME))


class SpanWindowSpec(ComponentSpec):
    # `curated_schema` is the schema's text: its feature types decide how statistics are made.
    PARAMETERS = parameters(
        data_root=str, span_pattern=str, file_format=str, window=int, span_index=str,
        curated_schema=str, eval_newest_examples=int, eval_sample_examples=int,
        sample_statistics_examples=int,
        optional=(SNAPSHOT_KEY,), **{SNAPSHOT_KEY: str})
    INPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        WINDOW_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        EVAL_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        REFERENCE_STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }


class SpanWindow(base_component.BaseComponent):
    """The `window` latest spans (0: all) ending at the span in `examples`."""

    SPEC_CLASS = SpanWindowSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, examples: types.BaseChannel, data_root, span_pattern: str,
                 file_format: str, span_index: str, curated_schema: str, window: int = 0,
                 eval_newest_examples: int = 20000, eval_sample_examples: int = 1000,
                 sample_statistics_examples: int = 3000):
        super().__init__(SpanWindowSpec(
            examples=examples, data_root=data_root, span_pattern=span_pattern,
            file_format=file_format, window=window, span_index=span_index,
            curated_schema=curated_schema, eval_newest_examples=eval_newest_examples,
            eval_sample_examples=eval_sample_examples,
            sample_statistics_examples=sample_statistics_examples,
            **{WINDOW_EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
               EVAL_EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
               REFERENCE_STATISTICS_KEY: types.Channel(
                   type=standard_artifacts.ExampleStatistics)}))
