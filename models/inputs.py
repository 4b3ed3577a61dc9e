"""tf.data input pipelines over the gzipped TFRecords of tf.Examples that ExampleGen writes."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from ctpipe.common import features

_TF_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
# Files read at once when interleaving: every span of a usual window, within memory bounds.
MAX_OPEN_FILES = 32


def _raw_feature_spec(with_label: bool) -> dict[str, tf.io.VarLenFeature]:
    # Variable length: CsvExampleGen writes an empty value list for an empty CSV cell, which
    # FixedLenFeature would reject; serving clients may also leave a feature out.
    spec = {f.name: tf.io.VarLenFeature(_TF_DTYPES[f.dtype]) for f in features.FEATURES}
    if with_label:
        spec[features.LABEL] = tf.io.VarLenFeature(tf.int64)
    return spec


def _first_or_default(values: tf.SparseTensor, default) -> tf.Tensor:
    """Rank-1 tensor of each example's first value, or `default` where it has none."""
    dense = tf.sparse.to_dense(values, default_value=default)
    padding = tf.fill([tf.shape(dense)[0], 1], tf.constant(default, dtype=dense.dtype))
    return tf.concat([dense, padding], axis=1)[:, 0]


def parse_examples(serialized: tf.Tensor, with_label: bool) -> dict[str, tf.Tensor]:
    """Batch of serialized tf.Examples -> dict of rank-1 raw feature tensors (and the label)."""
    parsed = tf.io.parse_example(serialized, _raw_feature_spec(with_label))
    dense = {f.name: _first_or_default(parsed[f.name], f.default) for f in features.FEATURES}
    if with_label:
        dense[features.LABEL] = _first_or_default(parsed[features.LABEL], 0)
    return dense


def _list_files(file_patterns: Sequence[str]) -> list[str]:
    files = sorted({f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no example files match {list(file_patterns)}")
    return files


def _records(file_patterns: Sequence[str],
             replay: Sequence[tuple[str, int]]) -> tf.data.Dataset:
    """Every record of the files, read as a stream interleaved across them (a window's spans
    are mixed from the first batch, and nothing is held but the read buffers), then the first
    `count` records of each replayed file."""
    files = _list_files(file_patterns)
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=min(len(files), MAX_OPEN_FILES), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    for path, count in replay:
        records = records.concatenate(
            tf.data.TFRecordDataset(path, compression_type="GZIP").take(count))
    return records


def make_dataset(file_patterns: Sequence[str], batch_size: int, *, shuffle: bool,
                 repeat: bool, seed: int | None = None, skip_batches: int = 0,
                 replay: Sequence[tuple[str, int]] = ()) -> tf.data.Dataset:
    """Batches of (raw feature dict, label) from gzipped TFRecord files, plus `replay`:
    (file, count) samples of other files (incremental training's replay of older spans).

    `skip_batches` resumes the exact batch sequence of an uninterrupted run (same seed).
    """
    dataset = _records(file_patterns, replay)
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    def split_label(serialized):
        parsed = parse_examples(serialized, with_label=True)
        label = parsed.pop(features.LABEL)
        return parsed, tf.cast(tf.expand_dims(label, -1), tf.float32)

    return (dataset.batch(batch_size, drop_remainder=False).skip(skip_batches)
            .map(split_label, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def load_columns(file_patterns: Sequence[str], limit: int = 200_000,
                 replay: Sequence[tuple[str, int]] = ()) -> dict[str, np.ndarray]:
    """Up to `limit` rows as numpy columns (feature names and the label)."""
    dataset = make_dataset(file_patterns, batch_size=4096, shuffle=False, repeat=False,
                           replay=replay).unbatch()
    columns: dict[str, list] = {name: [] for name in features.FEATURE_NAMES}
    columns[features.LABEL] = []
    for row_features, label in dataset.take(limit).batch(4096).as_numpy_iterator():
        for name, values in row_features.items():
            columns[name].append(values)
        columns[features.LABEL].append(label[:, 0])
    return {name: np.concatenate(parts) if parts else np.array([]) for name, parts in columns.items()}
