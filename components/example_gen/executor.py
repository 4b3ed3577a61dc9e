"""ExampleGen's executor: one span's files, resolved here, to train/eval TFRecords by Beam.

The span is resolved with TFX's own span matching (`{SPAN}` in the input pattern), by the
driver where one runs (LocalDagRunner: it also puts the files' fingerprint into the cache key)
and here otherwise (Kubeflow runs no drivers). `span` 0 asks for the newest span present; a
positive span that has no files fails the run naming it: late data is loud, not skipped.

The Beam job has one element per chunk (components/example_gen/ingest.py), so any Beam runner
spreads a large span over its workers; each writes its own shard of both splits. Row counts
come back as small JSON files in the execution's temporary folder.
"""
from __future__ import annotations

import json
import logging
import posixpath
from typing import Any

import apache_beam as beam
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from ctpipe.common import progress, properties
from ctpipe.components.example_gen import ingest

log = logging.getLogger(__name__)

REQUESTED_SPAN_KEY = "requested_span"
FILE_FORMAT_KEY = "file_format"


class SpanNotFound(ValueError):
    """The requested span (or any span) has no files under the input base."""


class EmptySpan(ValueError):
    """The span's files hold no rows."""


def span_range(span: int) -> range_config_pb2.RangeConfig | None:
    """TFX's range of exactly `span`; None (any span, the newest wins) for 0."""
    if not span:
        return None
    return range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
        start_span_number=span, end_span_number=span))


def resolve_span(input_base: str, input_config: example_gen_pb2.Input,
                 requested: int) -> tuple[int, str]:
    """(span, fingerprint) of `requested` (0: the newest span present), with TFX's matching;
    updates `input_config`'s pattern to the span's files."""
    try:
        fingerprint, span, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
            input_base, input_config.splits, span_range(requested))
    except ValueError as err:
        pattern = input_config.splits[0].pattern
        which = f"span {requested}" if requested else "any span"
        raise SpanNotFound(
            f"{which} has no files matching {pattern!r} under {input_base}"
            + (" (has it arrived yet? a run for a given span fails until its data is there)"
               if requested else "") + f": {err}") from None
    return span, fingerprint


def span_files(input_base: str, pattern: str) -> list[tuple[str, int]]:
    """(path, size) of the files a span pattern (relative to `input_base`) matches, sorted."""
    files = sorted(fileio.glob(posixpath.join(input_base, pattern)))
    return [(path, fileio.stat(path).length) for path in files]


class _WriteChunk(beam.DoFn):
    def __init__(self, output_uri: str, counts_dir: str):
        self._output_uri = output_uri
        self._counts_dir = counts_dir

    def process(self, chunk: ingest.Chunk) -> None:
        counts = ingest.write_chunk(chunk, self._output_uri)
        with fileio.open(posixpath.join(self._counts_dir, f"{chunk.index}.json"), "w") as out:
            out.write(json.dumps(counts))


def ingest_span(pipeline: beam.Pipeline, chunks: list[ingest.Chunk], output_uri: str,
                counts_dir: str, label: str = "") -> None:
    """The Beam job: every chunk to its shard of both splits (`label` tells several spans'
    steps apart in one pipeline)."""
    _ = (pipeline
         | f"Chunks{label}" >> beam.Create(chunks)
         | f"Spread{label}" >> beam.Reshuffle()
         | f"Encode{label}" >> beam.ParDo(_WriteChunk(output_uri, counts_dir)))


def mark_examples(artifact, splits: list[str]) -> None:
    """Records what an Examples artifact holds, as TFX's ExampleGen does: its splits, gzipped
    TFRecords of tf.Examples."""
    artifact.split_names = artifact_utils.encode_split_names(splits)
    examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(artifact, "tfrecords_gzip")


def read_counts(counts_dir: str, chunks: int) -> dict[str, int]:
    totals = dict.fromkeys(ingest.SPLITS, 0)
    for index in range(chunks):
        with fileio.open(posixpath.join(counts_dir, f"{index}.json")) as handle:
            for split, rows in json.loads(handle.read()).items():
                totals[split] += rows
    return totals


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes `Split-train/` and `Split-eval/` of one span, as TFX's ExampleGen lays them out."""

    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                                  input_config)
        requested = int(exec_properties.get(REQUESTED_SPAN_KEY) or 0)
        span = exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME)
        if span is None:  # no driver ran (Kubeflow): resolve here, as the driver would
            span, fingerprint = resolve_span(input_base, input_config, requested)
        else:
            fingerprint = exec_properties[example_gen_utils.FINGERPRINT_PROPERTY_NAME]
            if requested and span != requested:
                raise SpanNotFound(f"span {requested} was asked for, but the driver resolved "
                                   f"span {span}")
        pattern = input_config.splits[0].pattern
        files = span_files(input_base, pattern)
        if not files:
            raise SpanNotFound(f"span {span}: no files match {pattern!r} under {input_base}")
        file_format = exec_properties[FILE_FORMAT_KEY]
        chunks = ingest.plan_chunks(files, file_format)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        counts_dir = posixpath.join(self._get_tmp_dir(), "counts")
        fileio.makedirs(counts_dir)
        size = sum(length for _, length in files)
        log.info("ExampleGen: span %d, %d file(s), %.1f MB, in %d chunk(s)", span, len(files),
                 size / 1e6, len(chunks))
        with self._make_beam_pipeline() as pipeline:
            ingest_span(pipeline, chunks, examples.uri, counts_dir)
        rows = read_counts(counts_dir, len(chunks))
        if not sum(rows.values()):
            raise EmptySpan(f"span {span} holds no rows: {', '.join(p for p, _ in files)}")
        mark_examples(examples, list(ingest.SPLITS))
        examples.set_int_custom_property(example_gen_utils.SPAN_PROPERTY_NAME, span)
        examples.set_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME,
                                            fingerprint)
        for split, count in rows.items():
            examples.set_int_custom_property(properties.rows_property(split), count)
        progress.note(f"ExampleGen: span {span}, {sum(rows.values()):,} rows "
                      f"({rows['train']:,} train, {rows['eval']:,} eval) from {len(files)} "
                      f"{file_format} file(s)")
