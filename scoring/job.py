"""`ctpipe score`: score trips in Beam, check the scores, then publish them atomically.

Pipeline (DirectRunner here; `--beam-arg`s choose Dataflow, Flink or Spark on a cluster):

    input files -> plan byte ranges (~16 MiB, cut at line ends, first row number counted)
      -> reshuffle -> score a range: pyarrow CSV -> tf.Examples (ctpipe.scoring.encode) -> the
         model in process (its `serving_default`, batches of 4,096) or a served model over
         gRPC -> write `part-NNNNN-MMMMM.csv|parquet` (key, probability, model_version)
      -> combine the ranges' statistics -> the gate (ctpipe.scoring.gate)

Each range works on thousands of rows at once, so Beam's per-element cost is paid per range,
not per row. A range writes its part file under a name fixed by the range, so a retried
bundle rewrites the same file.

Publication (scoring.output): parts go to `OUTPUT/scores-<run>/`; only when the gate passes is
`OUTPUT/LATEST` replaced (atomically) to name that folder. A reader that opens `LATEST` first
never sees half a result, and a refused run leaves the previous `LATEST` (and its folder) as
they were.
"""
from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
from concurrent import futures
from pathlib import Path
from typing import Any, Iterator, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from ctpipe.common import features
from ctpipe.common.errors import UserError
from ctpipe.scoring.encode import ExampleEncoder
from ctpipe.serving.client.grpc_client import PredictionClient

RANGE_BYTES = 16 * 1024 * 1024
MODEL_BATCH = 4096
FORMATS = ("csv", "parquet")
# 1,000 buckets over [0, 1]: quantiles of the scores within 0.001.
HISTOGRAM_BINS = 1000
STATS_FILE = "_scoring_stats.json"


class ScoringError(UserError):
    """Bad input, model or output; the message names the file or setting."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """What scores: a SavedModel folder run in process, or a served model over gRPC."""

    model_dir: str = ""
    version: int = 0
    server: str = ""
    model_name: str = ""
    label: str = ""


@dataclasses.dataclass(frozen=True)
class ByteRange:
    path: str
    name: str  # the file's name relative to the input, for keys
    start: int
    end: int
    first_row: int  # 1-based number of the range's first data row in its file
    rows: int
    header: bytes
    index: int


@dataclasses.dataclass
class Stats:
    """Mergeable statistics of the scores."""

    rows: int = 0
    version: int = 0  # the model version that answered
    nan: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    histogram: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(HISTOGRAM_BINS, dtype=np.int64))

    @classmethod
    def of(cls, scores: np.ndarray, version: int) -> "Stats":
        finite = scores[np.isfinite(scores)]
        stats = cls(rows=len(scores), version=version, nan=int(len(scores) - len(finite)))
        if len(finite):
            stats.total, stats.squares = float(finite.sum()), float((finite ** 2).sum())
            stats.low, stats.high = float(finite.min()), float(finite.max())
            stats.histogram = np.histogram(np.clip(finite, 0, 1), HISTOGRAM_BINS, (0, 1))[0]
        return stats

    def merge(self, other: "Stats") -> "Stats":
        return Stats(self.rows + other.rows, max(self.version, other.version),
                     self.nan + other.nan, self.total + other.total,
                     self.squares + other.squares, min(self.low, other.low),
                     max(self.high, other.high), self.histogram + other.histogram)

    def to_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name != "histogram"}, "histogram": self.histogram.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Stats":
        return cls(**{**data, "histogram": np.array(data["histogram"], dtype=np.int64)})

    @property
    def finite(self) -> int:
        return self.rows - self.nan

    @property
    def mean(self) -> float:
        return self.total / self.finite if self.finite else float("nan")

    @property
    def std(self) -> float:
        if not self.finite:
            return float("nan")
        return float(max(self.squares / self.finite - self.mean ** 2, 0.0) ** 0.5)

    def quantile(self, q: float) -> float:
        cumulative = np.cumsum(self.histogram)
        index = int(np.searchsorted(cumulative, q * cumulative[-1]))
        return (index + 0.5) / HISTOGRAM_BINS


def input_files(source: str) -> list[tuple[str, str]]:
    """(path, name for keys) of every CSV file: the file itself, or `**/*.csv` of a folder."""
    if os.path.isfile(source):
        return [(source, os.path.basename(source))]
    if not os.path.isdir(source):
        raise ScoringError(f"input not found: {source}")
    paths = sorted(glob.glob(os.path.join(source, "**", "*.csv"), recursive=True))
    if not paths:
        raise ScoringError(f"no *.csv file under {source}")
    return [(path, os.path.relpath(path, source)) for path in paths]


def plan_ranges(path: str, name: str, range_bytes: int = RANGE_BYTES) -> Iterator[ByteRange]:
    """Byte ranges of one CSV file, cut after line ends, each with its first row's number.
    Rows must not hold line breaks inside quotes (trip data never does)."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        header = handle.readline()
        if not header.strip():
            raise ScoringError(f"{path} has no header row")
        start, row, index = len(header), 1, 0
        while start < size:
            handle.seek(min(start + range_bytes, size))
            handle.readline()  # to the end of the line the cut falls in
            end = min(handle.tell(), size) if start + range_bytes < size else size
            handle.seek(start)
            data = handle.read(end - start)
            rows_here = sum(1 for line in data.splitlines() if line.strip())
            yield ByteRange(path, name, start, end, row, rows_here, header, index)
            start, row, index = end, row + rows_here, index + 1


def _convert_options(key_column: str):
    types = {f.name: pa.string() if f.dtype == "string" else pa.float64()
             for f in features.FEATURES}
    if key_column:
        types.setdefault(key_column, pa.string())
    return pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                 null_values=[""], quoted_strings_can_be_null=True,
                                 include_columns=list(types), include_missing_columns=False)


def read_range(chunk: ByteRange, key_column: str = "") -> Any:
    """The range's feature columns (and the key column) as a pyarrow Table, features typed,
    integers checked to be integral; other columns are not parsed."""
    with open(chunk.path, "rb") as handle:
        handle.seek(chunk.start)
        data = chunk.header + handle.read(chunk.end - chunk.start)
    try:
        table = pa_csv.read_csv(io.BytesIO(data), convert_options=_convert_options(key_column))
    except pa.ArrowInvalid as err:
        raise ScoringError(f"{chunk.path} (rows from {chunk.first_row}): {err}") from None
    for feature in features.FEATURES:
        if feature.dtype != "int64" or feature.name not in table.column_names:
            continue
        values = table.column(feature.name).to_numpy()
        bad = np.flatnonzero(np.isfinite(values) & (values != np.floor(values)))
        if len(bad):
            raise ScoringError(f"{chunk.path} row {chunk.first_row + int(bad[0])}, column "
                               f"'{feature.name}': {values[bad[0]]} is not an integer")
    return table


class Scorer:
    """Scores serialized tf.Examples with the source's model; `version` is who answered."""

    def __init__(self, source: ModelSource):
        self.source = source
        self.version = source.version
        if source.server:

            self._client = PredictionClient(source.server, source.model_name, timeout=60)
        else:

            self._tf = tf
            self._signature = tf.saved_model.load(source.model_dir).signatures["serving_default"]

    def score(self, examples: list[bytes]) -> np.ndarray:
        parts = []
        for start in range(0, len(examples), MODEL_BATCH):
            batch = examples[start:start + MODEL_BATCH]
            if self.source.server:
                label = self.source.label or None
                version = None if label else (self.source.version or None)
                prediction = self._client.predict(batch, label=label, version=version)
                self.version = prediction.model_version
                parts.append(np.asarray(prediction.probabilities, dtype=np.float32))
            else:
                outputs = self._signature(**{features.EXAMPLES_KEY: self._tf.constant(batch)})
                parts.append(outputs[features.PREDICTION_KEY].numpy().reshape(-1))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def write_part(table: Any, path: str, output_format: str) -> None:
    """One part file, replaced whole (a retried range rewrites it)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    if output_format == "parquet":
        pq.write_table(table, temporary)
    else:
        pa_csv.write_csv(table, temporary)
    os.replace(temporary, path)


def _encode_and_score(table: Any, encoder: Any, scorer: "Scorer") -> np.ndarray:
    """Encodes slice n+1 while the model scores slice n: TensorFlow releases the interpreter
    lock while it computes, so the two use both cores."""
    with futures.ThreadPoolExecutor(1, thread_name_prefix="score") as model_thread:
        pending = [model_thread.submit(scorer.score, encoder.encode_table(
                       table.slice(start, MODEL_BATCH * 4)))
                   for start in range(0, table.num_rows, MODEL_BATCH * 4)]
        parts = [part.result() for part in pending]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def score_range(chunk: ByteRange, scorer: Scorer, encoder: Any, key_column: str,
                folder: str, output_format: str) -> Stats:
    """Reads, encodes, scores and writes one range; returns its statistics."""
    table = read_range(chunk, key_column)
    scores = _encode_and_score(table, encoder, scorer)
    if len(scores) != table.num_rows:
        raise ScoringError(f"the model returned {len(scores)} scores for {table.num_rows} rows "
                           f"of {chunk.path}")
    if key_column:
        if key_column not in table.column_names:
            raise ScoringError(f"{chunk.path} has no key column '{key_column}'")
        keys = table.column(key_column).cast(pa.string())
    else:
        numbers = pa.array(np.arange(chunk.first_row, chunk.first_row + table.num_rows))
        keys = pc.binary_join_element_wise(f"{chunk.name}:", pc.cast(numbers, pa.string()), "")
    result = pa.table({"key": keys, features.PREDICTION_KEY: pa.array(scores, pa.float32()),
                       "model_version": pa.array(np.full(table.num_rows, scorer.version,
                                                         dtype=np.int64))})
    name = f"part-{Path(chunk.name).stem}-{chunk.index:05d}.{output_format}"
    write_part(result, os.path.join(folder, name.replace(os.sep, "_")), output_format)
    return Stats.of(scores.astype(np.float64), scorer.version)


def run_beam(ranges: Sequence[ByteRange], source: ModelSource, key_column: str, folder: str,
             output_format: str, beam_args: Sequence[str]) -> Stats:
    """Scores every range in a Beam pipeline; returns the combined statistics."""
    class ScoreRanges(beam.DoFn):
        def setup(self) -> None:
            self.scorer = Scorer(source)
            self.encoder = ExampleEncoder()

        def process(self, chunk: ByteRange) -> Iterator[Stats]:
            yield score_range(chunk, self.scorer, self.encoder, key_column, folder,
                              output_format)

    stats_path = os.path.join(folder, STATS_FILE)
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        _ = (pipeline
             | "Ranges" >> beam.Create(list(ranges))
             | "Spread" >> beam.Reshuffle()
             | "Score" >> beam.ParDo(ScoreRanges())
             | "Combine" >> beam.CombineGlobally(_merge_all)
             | "Write" >> beam.Map(_write_stats, stats_path))
    # Written by whichever worker ran the combine: read back here, on any runner.
    with open(stats_path) as handle:
        return Stats.from_json(json.load(handle))


def _merge_all(parts: Any) -> Stats:
    total = Stats()
    for part in parts:
        total = total.merge(part)
    return total


def _write_stats(stats: Stats, path: str) -> None:
    with open(path, "w") as handle:
        json.dump(stats.to_json(), handle)
