"""CsvExampleGen executor that reads a rolling window of spans into one Examples artifact.

TFX 1.16's ExampleGen resolves exactly one span (the newest, for a rolling range). This executor
keeps that span resolution, and hence the span/version properties and the driver's fingerprint,
and reads the `window` spans ending at the resolved one, so that a fresh workspace trains on all
the history at once. Column types are inferred once over the whole window, so a column that is
empty in one quarter gets the same type in every span.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, struct_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder

SPAN_PLACEHOLDER = "{SPAN}"


def window_custom_config(span_pattern: str, window: int) -> example_gen_pb2.CustomConfig:
    """ExampleGen custom_config for this executor.

    The driver hands the executor the input pattern already resolved to the newest span, so the
    pattern with its {SPAN} placeholder travels here, with the window size (0: every span).
    """
    if SPAN_PLACEHOLDER not in span_pattern:
        raise ValueError(f"input pattern {span_pattern!r} has no {SPAN_PLACEHOLDER}")
    if window < 0:
        raise ValueError(f"span window must be >= 0, got {window}")
    settings = struct_pb2.Struct()
    settings.update({"span_pattern": span_pattern, "window": window})
    packed = any_pb2.Any()
    packed.Pack(settings)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def _settings_from(exec_properties: dict[str, Any]) -> tuple[str, int]:
    config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY],
        example_gen_pb2.CustomConfig())
    settings = struct_pb2.Struct()
    if not config.custom_config.Unpack(settings):
        raise ValueError("ExampleGen custom_config does not hold the span window settings")
    return settings["span_pattern"], int(settings["window"])


def window_patterns(span_pattern: str, newest_span: int, window: int,
                    existing_spans: list[int]) -> list[str]:
    """Patterns of the spans in the window ending at `newest_span`; errors on gaps."""
    oldest = 1 if window == 0 else max(1, newest_span - window + 1)
    if window == 0 and existing_spans:
        oldest = max(1, min(existing_spans))
    wanted = list(range(oldest, newest_span + 1))
    missing = sorted(set(wanted) - set(existing_spans))
    if missing:
        raise RuntimeError(f"spans missing inside the window {oldest}..{newest_span}: {missing}")
    return [span_pattern.replace(SPAN_PLACEHOLDER, str(span)) for span in wanted]


def _existing_spans(input_base: str, span_pattern: str) -> list[int]:
    """Span numbers whose files exist, found by matching the pattern with {SPAN} as digits."""
    glob = os.path.join(input_base, span_pattern.replace(SPAN_PLACEHOLDER, "*"))
    regex = re.compile(re.escape(os.path.join(input_base, span_pattern))
                       .replace(re.escape(SPAN_PLACEHOLDER), r"(\d+)").replace(r"\*", r"[^/]*"))
    spans = set()
    for path in fileio.glob(glob):
        match = regex.fullmatch(path)
        if match:
            spans.add(int(match.group(1)))
    return sorted(spans)


# Private key through which Do() hands the window's files to the PTransform.
_WINDOW_FILES_KEY = "_window_csv_files"
WINDOW_SPANS_PROPERTY = "window_spans"


def _window_files(exec_properties: dict[str, Any]) -> tuple[list[int], list[str]]:
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    span_pattern, window = _settings_from(exec_properties)
    newest = int(exec_properties[example_gen_utils.SPAN_PROPERTY_NAME])
    patterns = window_patterns(span_pattern, newest, window,
                               _existing_spans(input_base, span_pattern))
    spans = [newest - len(patterns) + 1 + i for i in range(len(patterns))]
    files = sorted(f for p in patterns for f in fileio.glob(os.path.join(input_base, p)))
    return spans, files


@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
class _WindowCsvToExample(beam.PTransform):
    """CSV files of every span in the window -> tf.Examples, with one type inference."""

    def __init__(self, exec_properties: dict[str, Any], split_pattern: str):
        del split_pattern  # resolved to the newest span only; the window's files are used
        self._csv_files = exec_properties[_WINDOW_FILES_KEY]

    def expand(self, pipeline: beam.Pipeline) -> beam.pvalue.PCollection:
        column_names = io_utils.load_csv_column_names(self._csv_files[0])
        for csv_file in self._csv_files[1:]:
            other = io_utils.load_csv_column_names(csv_file)
            if other != column_names:
                missing = [c for c in column_names if c not in other]
                extra = [c for c in other if c not in column_names]
                raise RuntimeError(
                    f"{csv_file} does not have the columns of {self._csv_files[0]}: "
                    f"missing {missing or 'none'}, unexpected {extra or 'none'}"
                    + ("" if missing or extra else ", order differs"))
        lines = (
            pipeline
            | "CreateFilenames" >> beam.Create(self._csv_files)
            | "ReadFromText" >> beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())  # pylint: disable=protected-access
            | "ParseCSVLine" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
            | "ExtractParsedCSVLines" >> beam.Keys())
        column_infos = beam.pvalue.AsSingleton(
            lines | "InferColumnTypes" >> beam.CombineGlobally(
                csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)))
        return lines | "ToTFExample" >> beam.ParDo(
            csv_executor._ParsedCsvToTfExample(), column_infos)  # pylint: disable=protected-access


class WindowCsvExecutor(BaseExampleGenExecutor):
    """Use as `custom_executor_spec` of a FileBasedExampleGen, with `window_custom_config`."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _WindowCsvToExample

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        spans, files = _window_files(exec_properties)
        if not files:
            raise RuntimeError(f"no CSV files in spans {spans[0]}..{spans[-1]}")
        logging.info("ExampleGen: reading spans %d..%d (%d files)", spans[0], spans[-1], len(files))
        super().Do(input_dict, output_dict, {**exec_properties, _WINDOW_FILES_KEY: files})
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
            examples.set_string_custom_property(WINDOW_SPANS_PROPERTY, f"{spans[0]}-{spans[-1]}")
