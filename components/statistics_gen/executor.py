"""StatisticsGen's executor: TFDV's statistics of every split, decoded on TensorFlow's parser.

TFX's own executor decodes tf.Examples into Arrow with tfx_bsl's decoder, one proto at a time:
on a 500 k-trip span here that took 68 s (7 k rows/s). TensorFlow's example parser decodes
the same records in about 1.3 s (after 1.3 s of reading), and TFDV computes its statistics on
the Arrow batches in about 2 s. The output is what TFX's StatisticsGen writes
(`Split-<split>/FeatureStats.pb`, one dataset per split), from the same TFDV combiners, so
ExampleValidator, SchemaGen and everything that reads statistics is unchanged.

The parser needs each feature's type: they come from the first records of the split's first
file, decoded by tfx_bsl (types as TFX would infer them). A file whose records disagree with
those types (a column that holds text in one file and numbers in another) is decoded by
tfx_bsl instead, slower but exact: such data must reach validation, not fail here.
"""
from __future__ import annotations

import logging
import posixpath
from typing import Any, Iterator

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation import constants as tfdv_constants
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from ctpipe.common import progress, properties

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
# Records decoded by tfx_bsl to learn the features' types.
TYPE_SAMPLE = 1_000


def _read(path: str, count: int | None = None):
    records = tf.data.TFRecordDataset(path, compression_type="GZIP")
    return records.take(count) if count else records


def feature_types(path: str) -> dict[str, pa.DataType]:
    """Each feature's value type in the first records of `path`, as tfx_bsl decodes them."""
    sample = list(_read(path, TYPE_SAMPLE).as_numpy_iterator())
    if not sample:
        return {}
    batch = ExamplesToRecordBatchDecoder().DecodeBatch(sample)
    return {name: field.type.value_type for name, field in zip(batch.schema.names,
                                                               batch.schema)}


def _parse_spec(types: dict[str, pa.DataType]) -> dict[str, Any]:
    def dtype(kind: pa.DataType):
        if pa.types.is_integer(kind):
            return tf.int64
        if pa.types.is_floating(kind):
            return tf.float32
        return tf.string

    return {name: tf.io.RaggedFeature(dtype(kind), row_splits_dtype=tf.int64)
            for name, kind in types.items()}


def _to_arrow(parsed: dict[str, Any]) -> pa.RecordBatch:
    columns = []
    for ragged in parsed.values():
        values = ragged.values.numpy()
        if values.dtype == object:
            values = pa.array(values.tolist(), type=pa.large_binary())
        else:
            values = pa.array(values)
        columns.append(pa.LargeListArray.from_arrays(pa.array(ragged.row_splits.numpy()),
                                                     values))
    return pa.RecordBatch.from_arrays(columns, list(parsed))


def _decoded_by_tfx_bsl(path: str) -> Iterator[pa.RecordBatch]:
    decoder = ExamplesToRecordBatchDecoder()
    for batch in _read(path).batch(BATCH_ROWS).as_numpy_iterator():
        yield decoder.DecodeBatch(list(batch))


def record_batches(path: str, types: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
    """The file's examples as Arrow record batches, decoded by TensorFlow's parser."""
    if not types:
        return
    spec = _parse_spec(types)
    batches = _read(path).batch(BATCH_ROWS).map(lambda b: tf.io.parse_example(b, spec),
                                                num_parallel_calls=tf.data.AUTOTUNE)
    try:
        yield from (_to_arrow(parsed) for parsed in batches)
    except tf.errors.InvalidArgumentError as err:
        log.warning("StatisticsGen: %s does not match the feature types of its split's first "
                    "file (%s); decoding it with tfx_bsl instead", path,
                    str(err).splitlines()[0])
        yield from _decoded_by_tfx_bsl(path)


class _ReadSplitFile(beam.DoFn):
    def __init__(self, types: dict[str, dict[str, pa.DataType]]):
        self._types = types

    def process(self, element: tuple[str, str]) -> Iterator[tuple[str, pa.RecordBatch]]:
        split, path = element
        for batch in record_batches(path, self._types[split]):
            yield split, batch


class _WriteSplitStatistics(beam.DoFn):
    """Each split's statistics as StatisticsGen writes them: one dataset per file."""

    def __init__(self, targets: dict[str, str]):
        self._targets = targets

    def process(self, statistics: statistics_pb2.DatasetFeatureStatisticsList) -> None:
        for dataset in statistics.datasets:
            single = statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset])
            single.datasets[0].name = tfdv_constants.DEFAULT_SLICE_KEY
            io_utils.write_bytes_file(self._targets[dataset.name], single.SerializeToString())


def profile(pipeline: beam.Pipeline, files: dict[str, list[str]], options: tfdv.StatsOptions,
            targets: dict[str, str]) -> None:
    """The Beam job: TFDV's sliced statistics keyed by split, in one pass over all files."""
    types = {split: feature_types(paths[0]) for split, paths in files.items() if paths}
    _ = (pipeline
         | "Files" >> beam.Create([(split, path) for split, paths in sorted(files.items())
                                   for path in paths])
         | "Spread" >> beam.Reshuffle()
         | "Decode" >> beam.ParDo(_ReadSplitFile(types))
         | "Statistics" >> stats_impl.GenerateSlicedStatisticsImpl(options,
                                                                   is_slicing_enabled=True)
         | "Write" >> beam.ParDo(_WriteSplitStatistics(targets)))


class Executor(base_beam_executor.BaseBeamExecutor):
    """Statistics of every split of the examples (minus `exclude_splits`), with the schema's
    types when a schema is given, as TFX's StatisticsGen."""

    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.EXAMPLES_KEY])
        excluded = json_utils.loads(
            exec_properties.get(standard_component_specs.EXCLUDE_SPLITS_KEY, "null")) or []
        splits = [split for split in artifact_utils.decode_split_names(examples.split_names)
                  if split not in excluded]
        options = tfdv.StatsOptions()
        if exec_properties.get(standard_component_specs.STATS_OPTIONS_JSON_KEY):
            options = tfdv.StatsOptions.from_json(
                exec_properties[standard_component_specs.STATS_OPTIONS_JSON_KEY])
        schemas = input_dict.get(standard_component_specs.SCHEMA_KEY) or []
        if schemas:
            options.schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
                artifact_utils.get_single_uri(schemas)))
        statistics = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.STATISTICS_KEY])
        files = {split: sorted(fileio.glob(posixpath.join(
            artifact_utils.get_split_uri([examples], split), "*"))) for split in splits}
        statistics.split_names = artifact_utils.encode_split_names(splits)
        targets = {split: posixpath.join(artifact_utils.get_split_uri([statistics], split),
                                         properties.STATISTICS_FILE) for split in splits}
        for target in targets.values():
            fileio.makedirs(posixpath.dirname(target))
        with self._make_beam_pipeline() as pipeline:
            profile(pipeline, files, options, targets)
        missing = [split for split, target in targets.items() if not fileio.exists(target)]
        if missing:
            raise ValueError(f"StatisticsGen: split(s) {missing} of {examples.uri} hold no "
                             "examples")
        span = examples.get_int_custom_property(properties.SPAN)
        statistics.set_int_custom_property(properties.SPAN, span)
        progress.note(f"StatisticsGen: span {span}, splits {', '.join(splits)}")

