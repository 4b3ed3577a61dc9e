"""ExampleGen's executor on real span folders: every row once, TFX's split layout and
properties, CSV and Parquet alike, and a clear error for each kind of bad input."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from ctpipe.common import features
from ctpipe.components.example_gen import ingest
from ctpipe.components.example_gen.component import input_config, output_config
from ctpipe.components.example_gen.executor import EmptySpan, Executor, SpanNotFound, resolve_span
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS


@pytest.fixture(scope="module")
def span_folders(tmp_path_factory, small_source) -> Path:
    root = tmp_path_factory.mktemp("spans")
    data.prepare(root / "csv", small_source)
    data.prepare(root / "parquet", small_source, file_format="parquet")
    return root


def _executor(tmp_path: Path) -> Executor:
    return Executor(Executor.Context(beam_pipeline_args=list(LOCAL_BEAM_ARGS),
                                     tmp_dir=str(tmp_path / "tmp"), unique_id="1"))


def _ingest(tmp_path: Path, data_root: Path, file_format: str = "csv", span: int = 0):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    _executor(tmp_path).Do({}, {"examples": [examples]}, {
        "input_base": str(data_root),
        "input_config": proto_utils.proto_to_json(input_config(file_format)),
        "requested_span": span, "file_format": file_format})
    return examples


def _records(examples, split: str) -> list[tf.train.Example]:
    files = sorted(Path(examples.uri, f"Split-{split}").glob("*.gz"))
    return [tf.train.Example.FromString(record) for record in
            tf.data.TFRecordDataset([str(f) for f in files], compression_type="GZIP")
            .as_numpy_iterator()]


def _csv_rows(path: Path) -> int:
    return pa_csv.read_csv(path).num_rows


def test_the_newest_span_is_ingested_with_tfx_layout_and_properties(tmp_path, span_folders):
    examples = _ingest(tmp_path, span_folders / "csv")
    newest = max(data.span_numbers(span_folders / "csv"))
    assert examples.get_int_custom_property("span") == newest
    assert examples.get_string_custom_property("input_fingerprint").startswith("split:")
    assert json.loads(examples.split_names) == ["train", "eval"]
    train, evaluation = _records(examples, "train"), _records(examples, "eval")
    rows = _csv_rows(span_folders / "csv" / f"span-{newest}" / "data.csv")
    assert len(train) + len(evaluation) == rows
    assert examples.get_int_custom_property("rows_train") == len(train)
    assert examples.get_int_custom_property("rows_eval") == len(evaluation)
    assert 0.7 < len(train) / rows < 0.9, "4:1 by hash"
    # An empty cell is an empty value list, as CsvExampleGen writes it; numbers keep their type.
    fare = [e.features.feature["fare"] for e in train]
    assert all(f.WhichOneof("kind") == "float_list" for f in fare)
    assert {e.features.feature[features.LABEL].int64_list.value[0] for e in train} == {0, 1}


def test_csv_chunks_cover_every_line_once(tmp_path, span_folders):
    source = span_folders / "csv" / "span-3" / "data.csv"
    size = source.stat().st_size
    whole = ingest.plan_chunks([(str(source), size)], "csv")
    pieces = ingest.plan_chunks([(str(source), size)], "csv", chunk_bytes=size // 7 + 1)
    assert len(whole) == 1 and len(pieces) == 7

    def fares(chunks):
        return sorted(value for chunk in chunks for batch in ingest.record_batches(chunk)
                      for value in batch.column("fare").to_pylist())

    assert fares(pieces) == fares(whole)
    assert len(fares(whole)) == _csv_rows(source)


def test_parquet_spans_give_the_same_examples_as_csv(tmp_path, span_folders):
    from_csv = _ingest(tmp_path / "csv", span_folders / "csv", span=2)
    from_parquet = _ingest(tmp_path / "parquet", span_folders / "parquet", "parquet", span=2)
    assert from_parquet.get_int_custom_property("span") == 2

    def trips(examples):
        return sorted((e.features.feature[features.TIMESTAMP].int64_list.value[0],
                       round(e.features.feature["fare"].float_list.value[0], 2))
                      for split in ("train", "eval") for e in _records(examples, split))

    assert trips(from_parquet) == trips(from_csv)


def test_a_span_that_has_not_arrived_fails_naming_it(tmp_path, span_folders):
    with pytest.raises(SpanNotFound, match="span 99 has no files.*has it arrived yet"):
        _ingest(tmp_path, span_folders / "csv", span=99)
    with pytest.raises(SpanNotFound, match="any span has no files"):
        resolve_span(str(tmp_path), input_config("csv"), 0)


def test_a_span_with_no_rows_fails_naming_it(tmp_path, span_folders):
    folder = tmp_path / "data" / "span-1"
    folder.mkdir(parents=True)
    header = (span_folders / "csv" / "span-1" / "data.csv").read_text().splitlines()[0]
    (folder / "data.csv").write_text(header + "\n")
    with pytest.raises(EmptySpan, match="span 1 holds no rows"):
        _ingest(tmp_path, tmp_path / "data")


def test_a_corrupt_file_fails_naming_it_and_leaves_nothing_behind(tmp_path, span_folders):
    folder = tmp_path / "data" / "span-1"
    shutil.copytree(span_folders / "parquet" / "span-2", folder)
    target = folder / "data.parquet"
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # truncated
    with pytest.raises(Exception, match=r"data.parquet: not a readable Parquet file"):
        _ingest(tmp_path, tmp_path / "data", "parquet")
    gzipped = tmp_path / "gz" / "span-1"
    gzipped.mkdir(parents=True)
    (gzipped / "data.csv").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(Exception, match=r"data.csv: not a readable CSV file"):
        _ingest(tmp_path / "second", tmp_path / "gz")


def test_parquet_files_are_read_a_row_group_at_a_time(tmp_path, span_folders):
    table = pq.read_table(span_folders / "parquet" / "span-1" / "data.parquet")
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=100)
    chunks = ingest.plan_chunks([(str(path), path.stat().st_size)], "parquet", chunk_bytes=1)
    assert len(chunks) == pq.ParquetFile(path).num_row_groups
    assert sum(b.num_rows for c in chunks for b in ingest.record_batches(c)) == table.num_rows


def test_the_output_config_states_the_split_the_executor_makes():
    config = output_config()
    assert isinstance(config, example_gen_pb2.Output)
    assert [(s.name, s.hash_buckets) for s in config.split_config.splits] == [
        ("train", ingest.TRAIN_BUCKETS), ("eval", ingest.TOTAL_BUCKETS - ingest.TRAIN_BUCKETS)]
