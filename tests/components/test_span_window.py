"""The window's view of the data folder agrees with ExampleGen's: the same fingerprint for the
same files (a stored span is reused, not caught up again), another one once they change."""
from __future__ import annotations

import os

from ctpipe.components.example_gen.component import SPAN_FOLDER_PATTERN, input_config
from ctpipe.components.example_gen.executor import resolve_span
from ctpipe.components.span_window.executor import data_spans
from ctpipe.dataprep import spans as data


def test_a_span_s_fingerprint_is_the_one_example_gen_records(tmp_path, small_source):
    data.prepare(tmp_path / "spans", small_source)
    folder = data_spans(str(tmp_path / "spans"), f"{SPAN_FOLDER_PATTERN}/*.csv")
    assert sorted(folder) == data.span_numbers(tmp_path / "spans")
    for span in (1, 4):
        resolved = resolve_span(str(tmp_path / "spans"), input_config("csv"), span)
        assert resolved == (span, folder[span])
    os.utime(tmp_path / "spans" / "span-4" / "data.csv", (1.6e9, 1.6e9))
    assert data_spans(str(tmp_path / "spans"), f"{SPAN_FOLDER_PATTERN}/*.csv")[4] != folder[4]
