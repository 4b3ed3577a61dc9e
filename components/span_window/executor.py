"""SpanWindow's executor: the window as references to stored spans, and bounded samples of it.

The span this run's ExampleGen wrote is registered in the span index (components/span_window/
index.py); the window's other spans are found there. What a run writes is O(the new span):
- `examples`: only the window's manifest (common/window.py), naming each span's own files;
- `eval_examples`: a fixed-size sample of the newest span's eval split (all of it when the span
  is small) plus one of the older spans' eval splits, so the Evaluator's cost follows neither
  the history nor the span's size (TFMA took 98 s on a 500 k-trip span's 100 k eval examples);
- `reference_statistics`: the drift reference, the previous run's window (the spans before the
  newest) pooled, profiled on a fixed-size sample of their training examples
  (validation/samples.py; docs/drift.md measures why pooled); no splits on the first span.

Catch-up: a window span the index lacks (a first run over a data folder that already holds a
history) or whose input files changed since it was stored (a rewritten span) is ingested here
once, by ExampleGen's own Beam job, into `<span index>/store/span-N/<fingerprint digest>/`,
and registered. Later runs find it in the index.

What the step reads lies outside the artifact store, so its cache key must say what it found:
with LocalDagRunner the driver fills the `snapshot` parameter before the cache is consulted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import posixpath
import re
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from ctpipe.common import progress, properties, storage
from ctpipe.common.window import MANIFEST_FILE, SPLITS, SpanEntry, WindowManifest
from ctpipe.components.example_gen import ingest
from ctpipe.components.example_gen.component import INPUT_SPLIT
from ctpipe.components.example_gen.executor import (
    ingest_span,
    mark_examples,
    read_counts,
    span_files,
)
from ctpipe.components.span_window import index
from ctpipe.validation.samples import first_records, write_sample_statistics
from ctpipe.validation.statistics_view import statistics_schema

log = logging.getLogger(__name__)

SPAN_PLACEHOLDER = "{SPAN}"
EXAMPLES_KEY = "examples"
WINDOW_EXAMPLES_KEY = "window_examples"
EVAL_EXAMPLES_KEY = "eval_examples"
REFERENCE_STATISTICS_KEY = "reference_statistics"


class SpanWindowError(RuntimeError):
    """The window cannot be assembled (a span inside it is missing everywhere)."""


def span_pattern_of(span_pattern: str, span: int) -> str:
    return span_pattern.replace(SPAN_PLACEHOLDER, str(span))


def data_spans(data_root: str, span_pattern: str) -> dict[int, str]:
    """Span number -> fingerprint of its files, for every span with files in the data folder
    (TFX's fingerprint: names, sizes and modification times)."""
    glob = posixpath.join(data_root, span_pattern.replace(SPAN_PLACEHOLDER, "*"))
    regex = re.compile(re.escape(posixpath.join(data_root, span_pattern))
                       .replace(re.escape(SPAN_PLACEHOLDER), r"(\d+)").replace(r"\*", r"[^/]*"))
    spans = sorted({int(m.group(1)) for m in map(regex.fullmatch, fileio.glob(glob)) if m})
    # As ExampleGen fingerprints the span it ingests, so that the two compare equal.
    return {span: io_utils.generate_fingerprint(
        INPUT_SPLIT, posixpath.join(data_root, span_pattern_of(span_pattern, span)))
        for span in spans}


def window_spans(newest: int, window: int, available: set[int]) -> list[int]:
    """The spans of the window ending at `newest` (window 0: from the oldest available)."""
    oldest = max(1, newest - window + 1) if window else min(available | {newest})
    wanted = list(range(oldest, newest + 1))
    missing = sorted(set(wanted) - available - {newest})
    if missing:
        raise SpanWindowError(f"spans missing inside the window {oldest}..{newest}: {missing} "
                              "(neither in the data folder nor stored by an earlier run)")
    return wanted


def plan(index_root: str, data: dict[int, str], newest: int,
         window: int) -> tuple[list[int], list[int], dict[int, SpanEntry]]:
    """(window spans, spans to catch up, stored entries usable as they are)."""
    stored = {span: entry for span in set(data) | {newest}
              if (entry := index.read(index_root, span)) is not None}
    spans = window_spans(newest, window, set(data) | set(stored))
    earlier = [span for span in spans if span != newest]
    reusable = {span: stored[span] for span in earlier if span in stored
                and (span not in data or stored[span].fingerprint == data[span])}
    return spans, [span for span in earlier if span not in reusable], reusable


def snapshot_of(exec_properties: dict[str, Any], newest: int) -> str:
    """What the window will be made of, for LocalDagRunner's cache: each older span and the
    fingerprint of the files its examples come from (stored or caught up, the same window)."""
    data = data_spans(exec_properties["data_root"], exec_properties["span_pattern"])
    spans, catch_up, reusable = plan(exec_properties["span_index"], data, newest,
                                     exec_properties["window"])
    fingerprints = {**{span: data[span] for span in catch_up},
                    **{span: entry.fingerprint for span, entry in reusable.items()}}
    return json.dumps({"window": spans, "fingerprints": fingerprints}, sort_keys=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_uri(uri: str) -> str:
    """Where later runs (other pods, other machines) open an artifact this step was handed:
    the remote URI rather than the launcher's local mirror, in the form steps open directly."""
    remote = storage.remote_uri(uri) if storage.OSS_LAUNCHER_VARIABLE in os.environ else None
    return storage.direct_uri(remote or uri)


def _span_list(spans: list[int]) -> str:
    return ",".join(str(span) for span in spans)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Registers the new span, catches up what the index lacks, writes the window's outputs."""

    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        new = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        newest = new.get_int_custom_property(example_gen_utils.SPAN_PROPERTY_NAME)
        index_root = exec_properties["span_index"]
        new_entry = index.entry_of(
            newest, new.get_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME),
            new.uri, {split: new.get_int_custom_property(properties.rows_property(split))
                      for split in SPLITS})
        new_entry = dataclasses.replace(new_entry, uri=stored_uri(new.uri))
        index.write(index_root, new_entry)
        data = data_spans(exec_properties["data_root"], exec_properties["span_pattern"])
        spans, catch_up, entries = plan(index_root, data, newest, exec_properties["window"])
        entries[newest] = new_entry
        if catch_up:
            entries.update(self._catch_up(exec_properties, index_root, catch_up, data))
        window = WindowManifest(tuple(entries[span] for span in spans))

        examples = output_dict[WINDOW_EXAMPLES_KEY][0]
        io_utils.write_string_file(posixpath.join(examples.uri, MANIFEST_FILE), window.to_json())
        mark_examples(examples, list(SPLITS))
        examples.set_int_custom_property(properties.SPAN, newest)
        examples.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
        examples.set_string_custom_property(properties.WINDOW_DIGEST, window.digest)
        examples.set_string_custom_property(properties.INGESTED_SPANS,
                                            _span_list(sorted([newest, *catch_up])))
        reused = sorted(set(spans) - set(catch_up) - {newest})
        examples.set_string_custom_property(properties.REUSED_SPANS, _span_list(reused))
        self._write_eval_examples(output_dict[EVAL_EXAMPLES_KEY][0], window,
                                  exec_properties["eval_newest_examples"],
                                  exec_properties["eval_sample_examples"])
        self._write_reference(output_dict[REFERENCE_STATISTICS_KEY][0], window, exec_properties)
        progress.note(
            f"SpanWindow: spans {window.span_range} ({sum(window.rows.values()):,} rows); new "
            f"span {newest}" + (f", caught up {_span_list(catch_up)}" if catch_up else "")
            + f"; referred to {_span_list(reused) or 'none'} where they are stored")

    def _catch_up(self, exec_properties: dict[str, Any], index_root: str, spans: list[int],
                  data: dict[int, str]) -> dict[int, SpanEntry]:
        """Ingests the spans the index lacks (or holds from older files), in one Beam job."""
        log.info("SpanWindow: catching up spans %s", spans)
        pattern, file_format = exec_properties["span_pattern"], exec_properties["file_format"]
        targets, chunks = {}, []
        for span in spans:
            targets[span] = posixpath.join(index_root, "store", f"span-{span}",
                                           _digest(data[span]))
            if fileio.exists(targets[span]):  # an ingestion that did not finish
                fileio.rmtree(targets[span])
            chunks.append(span_files(exec_properties["data_root"],
                                     span_pattern_of(pattern, span)))
        counts_root = posixpath.join(self._get_tmp_dir(), "catch-up")
        planned = {span: ingest.plan_chunks(files, file_format)
                   for span, files in zip(spans, chunks)}
        with self._make_beam_pipeline() as pipeline:
            for span in spans:
                fileio.makedirs(posixpath.join(counts_root, str(span)))
                ingest_span(pipeline, planned[span], targets[span],
                            posixpath.join(counts_root, str(span)), label=f"[{span}]")
        entries = {}
        for span in spans:
            rows = read_counts(posixpath.join(counts_root, str(span)), len(planned[span]))
            entries[span] = index.entry_of(span, data[span], targets[span], rows)
            index.write(index_root, entries[span])
        return entries

    @staticmethod
    def _write_eval_examples(artifact: types.Artifact, window: WindowManifest,
                             newest_examples: int, sample_size: int) -> None:
        newest = first_records(window.newest.paths("eval"), newest_examples)
        older = first_records(window.files("eval", window.older), sample_size)
        target = posixpath.join(artifact.uri, "Split-eval")
        fileio.makedirs(target)
        for name, records in (("newest.gz", newest), ("older.gz", older)):
            with tf.io.TFRecordWriter(posixpath.join(target, name), options="GZIP") as writer:
                for record in records:
                    writer.write(record)
        mark_examples(artifact, ["eval"])
        artifact.set_int_custom_property(properties.SPAN, window.newest.span)
        artifact.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
        log.info("SpanWindow: evaluation examples: %d of span %d's eval split and %d sampled "
                 "from the older spans", len(newest), window.newest.span, len(older))

    @staticmethod
    def _write_reference(artifact: types.Artifact, window: WindowManifest,
                         exec_properties: dict[str, Any]) -> None:
        older = list(window.older)
        artifact.set_string_custom_property(
            properties.REFERENCE_SPANS, _span_list([entry.span for entry in older]))
        splits = []
        if older:
            write_sample_statistics(
                artifact, window.files(properties.SAMPLE_SPLIT, older),
                exec_properties["sample_statistics_examples"],
                statistics_schema(exec_properties["curated_schema"]),
                f"spans {_span_list([entry.span for entry in older])}")
            splits = [properties.SAMPLE_SPLIT]
        fileio.makedirs(artifact.uri)
        artifact.split_names = artifact_utils.encode_split_names(splits)
