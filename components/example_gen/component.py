"""ExampleGen: TFX's file-based ExampleGen for one explicit span, with a fast executor.

A `FileBasedExampleGen` (its spec, its `Examples` artifact, its driver where one runs), given
one more parameter, `requested_span`: the span this run ingests, 0 for the newest present.
It is a runtime parameter on Kubeflow, as TFX's periodic-training design makes the span a run
parameter, so that a run for a span whose data has not arrived fails instead of training on
old data. Sources: CSV or Parquet span folders, `<input_base>/span-N/*.csv|*.parquet`.

TFX compiles every FileBasedExampleGen for Kubeflow with a driver hook that only Vertex AI
runs; the compiled file drops it (pipeline/kubeflow/runner.py) and this executor resolves the
span itself, the same on every orchestrator.
"""
from __future__ import annotations

from typing import Union

from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from ctpipe.common.policies import DATA_FORMATS
from ctpipe.common.snapshot import SNAPSHOT_KEY
from ctpipe.components.example_gen import ingest
from ctpipe.components.example_gen.executor import (
    FILE_FORMAT_KEY,
    REQUESTED_SPAN_KEY,
    Executor,
    span_range,
)

SPAN_FOLDER_PATTERN = "span-{SPAN}"
# The one input split's name: TFX's file fingerprint of a span starts with it.
INPUT_SPLIT = "single_split"


class SpanExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        REQUESTED_SPAN_KEY: ExecutionParameter(type=int),
        FILE_FORMAT_KEY: ExecutionParameter(type=str),
        # Kubeflow: the span and fingerprint a snapshot step found, for KFP's cache key
        # (pipeline/kubeflow/snapshots.py); the executor does not read it.
        SNAPSHOT_KEY: ExecutionParameter(type=str, optional=True),
    }


def input_config(file_format: str) -> example_gen_pb2.Input:
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
        name=INPUT_SPLIT, pattern=f"{SPAN_FOLDER_PATTERN}/*.{file_format}")])


def output_config() -> example_gen_pb2.Output:
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=ingest.TRAIN_BUCKETS),
        example_gen_pb2.SplitConfig.Split(
            name="eval", hash_buckets=ingest.TOTAL_BUCKETS - ingest.TRAIN_BUCKETS)]))


class ExampleGen(FileBasedExampleGen):
    """One span of `input_base` (span folders of CSV or Parquet files) as train/eval
    tf.Examples."""

    SPEC_CLASS = SpanExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: Union[str, data_types.RuntimeParameter],
                 span: Union[int, data_types.RuntimeParameter] = 0, file_format: str = "csv"):
        if file_format not in DATA_FORMATS:
            raise ValueError(f"file_format must be one of {DATA_FORMATS}, "
                             f"got {file_format!r}")
        # A known span also bounds the driver's search (LocalDagRunner), so that the files'
        # fingerprint in the cache key is that span's.
        spec = SpanExampleGenSpec(
            input_base=input_base, input_config=input_config(file_format),
            output_config=output_config(),
            range_config=span_range(span) if isinstance(span, int) else None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            **{REQUESTED_SPAN_KEY: span, FILE_FORMAT_KEY: file_format})
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
