"""Artifacts as the steps before a component hand them over, for its tests."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tfx.types import standard_artifacts

from ctpipe.common import properties
from ctpipe.common.window import MANIFEST_FILE, SpanEntry, WindowManifest


def artifact(kind, uri: Path):
    """An artifact of type `kind` at `uri`, as the orchestrator hands it to an executor."""
    made = kind()
    made.uri = str(uri)
    return made


def one_span_window(root: Path, span: int,
                    records: dict[str, list[bytes]]) -> standard_artifacts.Examples:
    """SpanWindow's `window_examples` for a window of one span whose splits hold `records`
    (gzipped TFRecords, as ExampleGen writes them)."""
    folder = root / f"span-{span}"
    for split, split_records in records.items():
        (folder / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / f"Split-{split}" / "data.gz"),
                                  options="GZIP") as writer:
            for record in split_records:
                writer.write(record)
    window = WindowManifest((SpanEntry(
        span=span, fingerprint="fingerprint", uri=str(folder),
        rows={split: len(split_records) for split, split_records in records.items()},
        files={split: ["data.gz"] for split in records}),))
    examples = artifact(standard_artifacts.Examples, root / "window")
    (root / "window").mkdir()
    (root / "window" / MANIFEST_FILE).write_text(window.to_json())
    examples.set_int_custom_property(properties.SPAN, span)
    examples.set_string_custom_property(properties.WINDOW_SPANS, window.span_range)
    return examples
