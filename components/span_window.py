"""SpanWindow: each span ingested and profiled once, the training window assembled from them.

The data folder holds one folder per span (`span-N/*.csv`). A span is identified by its number
and the fingerprint of its files (TFX's: count, size and modification times), so a rewritten span
is noticed. Every span this run needs that the span store lacks is read (TFX's CSV-to-Example
transform), split into train/eval by a hash of each example and written; the newest span, when it
lacks statistics, is profiled (TFDV, with the curated schema's feature types, as StatisticsGen
does when given the schema). All of it happens in ONE Beam pipeline and lands in the span store
(`<span_store>/span-N/<fingerprint>/`, marker files written last). Later runs reuse it, so a run
costs the new span's ingestion and profiling, not the history's.

Outputs, assembled from the store (copies, so each artifact stands on its own as TFX expects):
- `examples`: every span of the window (`Split-{train,eval}/span-N.tfrecord.gz`) and the
  window's manifest (models/window.py), which the Trainer reads;
- `eval_examples`: the newest span's eval split plus a fixed-size sample of the older spans'
  eval splits, so the Evaluator's cost does not grow with the history;
- `statistics`: the newest span's own statistics (validation and drift see the new data
  undiluted by the older spans);
- `reference_statistics`: the reference for drift, the previous run's window (the spans before
  the newest) pooled, profiled on a fixed-size sample of their training examples
  (validation/samples.py; docs/drift.md measures why pooled); no splits on the first span.

What the step reads lies outside the artifact store, so its cache key must say what it found:
with LocalDagRunner the driver fills the `snapshot` parameter (span numbers and fingerprints)
before the cache is consulted. Kubeflow runs no custom drivers: there the executor scans itself
and the compiled pipeline turns caching off for this step (pipeline/kubeflow_runner.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import posixpath
import re
from typing import Any

import apache_beam as beam
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation import constants as tfdv_constants
from tensorflow_data_validation.statistics import stats_impl
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor, base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from common import progress, properties
from common.snapshot import SNAPSHOT_KEY, SnapshotDriver
from common.specs import parameters
from models.window import MANIFEST_FILE, SPLITS, SpanEntry, WindowManifest, span_file_name
from validation.samples import first_records, write_sample_statistics
from validation.statistics_view import statistics_schema

log = logging.getLogger(__name__)

SPAN_PLACEHOLDER = "{SPAN}"
DEFAULT_SPAN_PATTERN = "span-{SPAN}/*.csv"
# Hash buckets of the train/eval split, as the pipeline's ExampleGen had them (4:1).
TRAIN_BUCKETS, TOTAL_BUCKETS = 4, 5
EXAMPLES_MARKER = "_EXAMPLES.json"
STATISTICS_MARKER = "_STATISTICS.json"

EXAMPLES_KEY = "examples"
EVAL_EXAMPLES_KEY = "eval_examples"
STATISTICS_KEY = "statistics"
REFERENCE_STATISTICS_KEY = "reference_statistics"


class SpanWindowError(RuntimeError):
    """The data folder cannot provide the window (no spans, gaps, unreadable files)."""


# --- finding spans -------------------------------------------------------------------------

def span_pattern_of(span_pattern: str, span: int) -> str:
    return span_pattern.replace(SPAN_PLACEHOLDER, str(span))


def existing_spans(data_root: str, span_pattern: str) -> list[int]:
    """Span numbers whose files exist, found by matching the pattern with {SPAN} as digits."""
    if SPAN_PLACEHOLDER not in span_pattern:
        raise SpanWindowError(f"span pattern {span_pattern!r} has no {SPAN_PLACEHOLDER}")
    glob = posixpath.join(data_root, span_pattern.replace(SPAN_PLACEHOLDER, "*"))
    regex = re.compile(re.escape(posixpath.join(data_root, span_pattern))
                       .replace(re.escape(SPAN_PLACEHOLDER), r"(\d+)").replace(r"\*", r"[^/]*"))
    return sorted({int(m.group(1)) for m in map(regex.fullmatch, fileio.glob(glob)) if m})


def window_spans(newest: int, window: int, existing: list[int]) -> list[int]:
    """The spans of the window ending at `newest` (window 0: from the oldest span present);
    a gap inside it is an error."""
    oldest = max(1, newest - window + 1) if window else max(1, min(existing))
    wanted = list(range(oldest, newest + 1))
    missing = sorted(set(wanted) - set(existing))
    if missing:
        raise SpanWindowError(f"spans missing inside the window {oldest}..{newest}: {missing}")
    return wanted


def scan(data_root: str, span_pattern: str, window: int) -> dict[str, Any]:
    """What this run reads: the window's spans, the reference spans (the previous run's window:
    the same window one span earlier) and each one's file fingerprint."""
    existing = existing_spans(data_root, span_pattern)
    if not existing:
        raise SpanWindowError(f"no spans in {data_root} (expected folders matching "
                              f"{span_pattern!r}, e.g. {span_pattern_of(span_pattern, 1)})")
    spans = window_spans(existing[-1], window, existing)
    earlier = [s for s in existing if s < existing[-1]]
    reference = window_spans(earlier[-1], window, earlier) if earlier else []
    return {"window": spans, "reference": reference,
            "fingerprints": {str(span): io_utils.generate_fingerprint(
                f"span-{span}", posixpath.join(data_root, span_pattern_of(span_pattern, span)))
                for span in sorted(set(spans) | set(reference))}}


def snapshot_of(exec_properties: dict[str, Any]) -> str:
    return json.dumps(scan(exec_properties["data_root"], exec_properties["span_pattern"],
                           exec_properties["window"]), sort_keys=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the span store ------------------------------------------------------------------------

class Store:
    """`<root>/span-N/<fingerprint>/` holds a span's examples, and its statistics under
    `statistics-<schema view>/`.
    A folder counts only once its marker file, written last, exists."""

    def __init__(self, root: str, view: schema_pb2.Schema):
        self.root = root
        self.view_key = _digest(text_format.MessageToString(view))

    def entry(self, span: int, fingerprint: str) -> str:
        return posixpath.join(self.root, f"span-{span}", _digest(fingerprint))

    def statistics_dir(self, entry: str) -> str:
        return posixpath.join(entry, f"statistics-{self.view_key}")

    @staticmethod
    def marker(folder: str, name: str) -> dict[str, Any] | None:
        path = posixpath.join(folder, name)
        return json.loads(io_utils.read_string_file(path)) if fileio.exists(path) else None

    @staticmethod
    def mark(folder: str, name: str, value: dict[str, Any]) -> None:
        io_utils.write_string_file(posixpath.join(folder, name), json.dumps(value))


def example_file(entry: str, split: str) -> str:
    return posixpath.join(entry, f"Split-{split}", "data.gz")


def _partition(serialized: bytes, partitions: int) -> int:
    """train (0) or eval (1) by a hash of the example, as TFX's ExampleGen splits."""
    bucket = int(hashlib.sha256(serialized).hexdigest(), 16) % TOTAL_BUCKETS
    return 0 if bucket < TRAIN_BUCKETS else 1


class _WriteSliceStatistics(beam.DoFn):
    """Writes each slice as the FeatureStats.pb StatisticsGen would write for that data
    alone: one dataset."""

    def __init__(self, targets: dict[str, str]):
        self._targets = targets

    def process(self, statistics: statistics_pb2.DatasetFeatureStatisticsList) -> None:
        for dataset in statistics.datasets:
            single = statistics_pb2.DatasetFeatureStatisticsList(datasets=[dataset])
            single.datasets[0].name = tfdv_constants.DEFAULT_SLICE_KEY
            io_utils.write_bytes_file(self._targets[dataset.name], single.SerializeToString())


@dataclasses.dataclass
class Work:
    """What one Beam pipeline does: spans to ingest (span -> store entry) and stored files to
    profile (slice name -> (examples file, statistics file)); an examples file may be one this
    very pass writes."""

    ingest: dict[int, str] = dataclasses.field(default_factory=dict)
    profile: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


def run_work(pipeline: beam.Pipeline, work: Work, data_root: str, span_pattern: str,
             view: schema_pb2.Schema) -> None:
    """Ingestion and profiling in one pass. Statistics come from ONE TFDV combiner keyed by
    (span, split): each TFDV combiner has a fixed cost of seconds, paid once here."""
    to_examples = csv_executor.Executor().GetInputSourceToExamplePTransform()
    to_record_batches = tfxio.TFExampleBeamRecord(physical_format="inmem",
                                                  telemetry_descriptors=["ctpipe"])
    sources: dict[str, beam.PCollection] = {}
    for span, entry in sorted(work.ingest.items()):
        serialized = (
            pipeline
            | f"ReadCsv[{span}]" >> to_examples(
                {standard_component_specs.INPUT_BASE_KEY: data_root},
                span_pattern_of(span_pattern, span))
            | f"Serialize[{span}]" >> beam.Map(lambda e: e.SerializeToString(deterministic=True)))
        parts = serialized | f"Split[{span}]" >> beam.Partition(_partition, len(SPLITS))
        for split, part in zip(SPLITS, parts):
            _ = part | f"Write[{span}/{split}]" >> beam.io.WriteToTFRecord(
                posixpath.join(entry, f"Split-{split}", "data"), file_name_suffix=".gz",
                num_shards=1, shard_name_template="",
                compression_type=beam.io.filesystem.CompressionTypes.GZIP)
            sources[example_file(entry, split)] = part
    keyed = []
    for name, (source, _) in sorted(work.profile.items()):
        if source in sources:
            records = sources[source]
        else:
            records = pipeline | f"Read[{name}]" >> beam.io.ReadFromTFRecord(
                source, compression_type=beam.io.filesystem.CompressionTypes.GZIP)
        keyed.append(records
                     | f"ToRecordBatch[{name}]" >> to_record_batches.BeamSource()
                     | f"Key[{name}]" >> beam.Map(lambda batch, key: (key, batch), name))
    if not keyed:
        return
    # TFDV's sliced statistics on (slice, record batch) pairs: what tfdv.GenerateStatistics
    # runs after slicing, without its slice of every example, which would have to merge
    # spans whose columns differ in type (a span with text in a numeric column must reach
    # validation, not fail here).
    _ = (keyed
         | "AllSlices" >> beam.Flatten()
         | "Statistics" >> stats_impl.GenerateSlicedStatisticsImpl(
             tfdv.StatsOptions(schema=view), is_slicing_enabled=True)
         | "WriteStatistics" >> beam.ParDo(_WriteSliceStatistics(
             {name: target for name, (_, target) in work.profile.items()})))


def count_records(path: str) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(path, compression_type="GZIP"))


# --- assembling the outputs ----------------------------------------------------------------

def _copy(source: str, target: str) -> None:
    fileio.makedirs(posixpath.dirname(target))
    fileio.copy(source, target, overwrite=True)


def _mark_examples(artifact: types.Artifact, splits: list[str]) -> None:
    artifact.split_names = artifact_utils.encode_split_names(splits)
    examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(artifact, "tfrecords_gzip")


def _split_statistics_file(folder: str, split: str) -> str:
    return posixpath.join(folder, f"Split-{split}", properties.STATISTICS_FILE)


def _fill_statistics(artifact: types.Artifact, folder: str, splits: list[str]) -> None:
    for split in splits:
        _copy(_split_statistics_file(folder, split),
              posixpath.join(artifact.uri, f"Split-{split}", properties.STATISTICS_FILE))
    artifact.split_names = artifact_utils.encode_split_names(splits)


def _span_list(spans: list[int]) -> str:
    return ",".join(str(span) for span in spans)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Ingests and profiles what the store lacks, then assembles the outputs from it."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        found = json.loads(exec_properties.get(SNAPSHOT_KEY) or snapshot_of(exec_properties))
        fingerprints = {int(span): value for span, value in found["fingerprints"].items()}
        view = statistics_schema(exec_properties["curated_schema"])
        store = Store(exec_properties["span_store"], view)
        entries = {span: store.entry(span, value) for span, value in fingerprints.items()}
        newest = found["window"][-1]
        work = Work(ingest={span: entry for span, entry in entries.items()
                            if store.marker(entry, EXAMPLES_MARKER) is None})
        for entry in work.ingest.values():
            if fileio.exists(entry):  # an ingestion that did not finish
                fileio.rmtree(entry)
        # A span is profiled when it is the newest (validation and drift read its statistics)
        # and has no statistics for this schema view yet, so at most once. Older spans a
        # first run ingests are not: nothing reads their own statistics (the drift reference
        # profiles a sample of them), and TFDV costs about a second per split.
        profiled = [newest] if store.marker(store.statistics_dir(entries[newest]),
                                            STATISTICS_MARKER) is None else []
        for span in profiled:
            for split in SPLITS:
                work.profile[f"{span}/{split}"] = (example_file(entries[span], split),
                                                   _split_statistics_file(
                                                       store.statistics_dir(entries[span]), split))
        if work.ingest or work.profile:
            log.info("SpanWindow: ingesting spans %s, profiling %s", sorted(work.ingest),
                     sorted(work.profile))
            with self._make_beam_pipeline() as pipeline:
                run_work(pipeline, work, exec_properties["data_root"],
                         exec_properties["span_pattern"], view)
            self._mark_work(store, work, entries, fingerprints, profiled)

        window = WindowManifest(tuple(
            SpanEntry(span, fingerprints[span],
                      store.marker(entries[span], EXAMPLES_MARKER)["rows"])
            for span in found["window"]))
        reused = sorted(set(entries) - set(work.ingest))
        self._write_examples(output_dict[EXAMPLES_KEY][0], window, entries,
                             sorted(work.ingest), reused)
        self._write_eval_examples(output_dict[EVAL_EXAMPLES_KEY][0], window, entries,
                                  exec_properties["eval_sample_examples"])
        statistics = output_dict[STATISTICS_KEY][0]
        _fill_statistics(statistics, store.statistics_dir(entries[newest]), list(SPLITS))
        statistics.set_int_custom_property(properties.SPAN, newest)
        reference = output_dict[REFERENCE_STATISTICS_KEY][0]
        spans = found["reference"]
        reference.set_string_custom_property(properties.REFERENCE_SPANS, _span_list(spans))
        splits = []
        if spans:
            write_sample_statistics(
                reference, [example_file(entries[s], properties.SAMPLE_SPLIT) for s in spans],
                exec_properties["sample_statistics_examples"], view, f"spans {_span_list(spans)}")
            splits = [properties.SAMPLE_SPLIT]
        fileio.makedirs(reference.uri)
        reference.split_names = artifact_utils.encode_split_names(splits)
        progress.note(f"SpanWindow: spans {window.span_range}; ingested and profiled "
                      f"{_span_list(sorted(work.ingest)) or 'none'}, reused "
                      f"{_span_list(reused) or 'none'}")

    @staticmethod
    def _mark_work(store: Store, work: Work, entries: dict[int, str],
                   fingerprints: dict[int, str], profiled: list[int]) -> None:
        for span, entry in work.ingest.items():
            store.mark(entry, EXAMPLES_MARKER, {
                "span": span, "fingerprint": fingerprints[span],
                "rows": {split: count_records(example_file(entry, split)) for split in SPLITS}})
        for span in profiled:
            store.mark(store.statistics_dir(entries[span]), STATISTICS_MARKER, {"span": span})

    @staticmethod
    def _write_examples(artifact: types.Artifact, window: WindowManifest,
                        entries: dict[int, str], ingested: list[int],
                        reused: list[int]) -> None:
        for entry in window.spans:
            for split in SPLITS:
                _copy(example_file(entries[entry.span], split),
                      posixpath.join(artifact.uri, f"Split-{split}", span_file_name(entry.span)))
        io_utils.write_string_file(posixpath.join(artifact.uri, MANIFEST_FILE), window.to_json())
        _mark_examples(artifact, list(SPLITS))
        artifact.set_int_custom_property(properties.SPAN, window.newest.span)
        artifact.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
        artifact.set_string_custom_property(properties.WINDOW_DIGEST, window.digest)
        artifact.set_string_custom_property(properties.INGESTED_SPANS, _span_list(ingested))
        artifact.set_string_custom_property(properties.REUSED_SPANS, _span_list(reused))

    @staticmethod
    def _write_eval_examples(artifact: types.Artifact, window: WindowManifest,
                             entries: dict[int, str], sample_size: int) -> None:
        newest = window.newest.span
        _copy(example_file(entries[newest], "eval"),
              posixpath.join(artifact.uri, "Split-eval", span_file_name(newest)))
        sample = first_records([example_file(entries[e.span], "eval") for e in window.older],
                               sample_size)
        with tf.io.TFRecordWriter(posixpath.join(artifact.uri, "Split-eval", "older.gz"),
                                  options="GZIP") as writer:
            for record in sample:
                writer.write(record)
        _mark_examples(artifact, ["eval"])
        artifact.set_int_custom_property(properties.SPAN, newest)
        artifact.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
        log.info("SpanWindow: evaluation examples: span %d's eval split and %d sampled from "
                 "the older spans", newest, len(sample))


class Driver(SnapshotDriver):
    """Records what the data folder holds before the cache is consulted (LocalDagRunner)."""

    def snapshot(self, input_dict, exec_properties) -> str:
        return snapshot_of(exec_properties)


class SpanWindowSpec(ComponentSpec):
    # `curated_schema` is the schema's text: its feature types decide how statistics are made.
    PARAMETERS = parameters(
        data_root=str, span_pattern=str, window=int, span_store=str, curated_schema=str,
        eval_sample_examples=int, sample_statistics_examples=int,
        optional=(SNAPSHOT_KEY,), **{SNAPSHOT_KEY: str})
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        EVAL_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        REFERENCE_STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }


class SpanWindow(base_component.BaseComponent):
    """The spans of the window (`window` latest; 0: all) under `data_root`."""

    SPEC_CLASS = SpanWindowSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, data_root, span_store: str, curated_schema: str, window: int = 0,
                 eval_sample_examples: int = 1000, sample_statistics_examples: int = 3000,
                 span_pattern: str = DEFAULT_SPAN_PATTERN):
        super().__init__(SpanWindowSpec(
            data_root=data_root, span_pattern=span_pattern, window=window,
            span_store=span_store, curated_schema=curated_schema,
            eval_sample_examples=eval_sample_examples,
            sample_statistics_examples=sample_statistics_examples,
            **{EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
               EVAL_EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
               STATISTICS_KEY: types.Channel(type=standard_artifacts.ExampleStatistics),
               REFERENCE_STATISTICS_KEY: types.Channel(
                   type=standard_artifacts.ExampleStatistics)}))
