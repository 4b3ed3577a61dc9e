"""The taxi trips as the benchmarks (and tests) use them: a held-out share of the trips, a
model's AUC on it, and labelled rows written as the Trainer reads them."""
from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ctpipe.common import features
from ctpipe.serving.client.examples import row_to_example

REPO = Path(__file__).resolve().parent.parent


def split_source(source: Path, out_dir: Path) -> tuple[Path, list[dict[str, str]]]:
    """Writes the training 90 % as out_dir/train/data.csv; returns it and the held-out rows."""
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    # Stable hash of the whole row: the same trips are held out on every machine.
    held_out = [r for r in rows if zlib.crc32(",".join(r.values()).encode()) % 10 == 0]
    kept = [r for r in rows if zlib.crc32(",".join(r.values()).encode()) % 10 != 0]
    train_csv = out_dir / "train" / "data.csv"
    train_csv.parent.mkdir(parents=True)
    with train_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return train_csv, held_out


def served_model(workspace: Path) -> Path:
    """The newest version a local workspace pushed (its TF Serving version folder)."""
    versions = sorted((workspace / "serving" / "big_tipper").glob("*/saved_model.pb"))
    return versions[-1].parent


def held_out_auc(model_dir: Path, rows: list[dict[str, str]]) -> float:
    """AUC of a SavedModel's serving_default on raw rows sent as tf.Examples: every column of
    the trips file but the label and tips, typed as the curated schema types them (the peer's
    model parses them all; ours reads its features among them)."""
    schema = text_format.Parse((REPO / "schemas" / "schema.pbtxt").read_text(),
                               schema_pb2.Schema())
    dtypes = {schema_pb2.INT: "int64", schema_pb2.FLOAT: "float32", schema_pb2.BYTES: "string"}
    columns = [(f.name, dtypes[f.type]) for f in schema.feature
               if f.name not in (features.LABEL, features.TIPS)]
    serialized = [row_to_example(row, f"held-out trip {index + 1}", empty_lists=True,
                                 columns=columns) for index, row in enumerate(rows)]
    labels = np.array([features.is_big_tipper(float(r["tips"]), float(r["fare"])) for r in rows])
    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    input_name = list(signature.structured_input_signature[1])[0]
    outputs = signature(**{input_name: tf.constant(serialized)})
    scores = np.reshape(next(iter(outputs.values())).numpy(), [-1])
    auc = tf.keras.metrics.AUC(num_thresholds=2000)
    auc.update_state(labels, scores)
    return float(auc.result().numpy())


def write_examples(rows: Iterable[Mapping[str, str]], path: str) -> str:
    """Writes labelled CSV rows as a gzipped TFRecord file of tf.Examples (the Trainer's input)."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in rows:
            writer.write(row_to_example(row, with_label=True, empty_lists=True))
    return path
