"""Which spans the window holds, and the window's view of the data folder, which agrees with
ExampleGen's: the same fingerprint for the same files (a stored span is reused, not caught up
again), another one once they change."""
from __future__ import annotations

import os

import pytest

from ctpipe.components.example_gen.component import SPAN_FOLDER_PATTERN, input_config
from ctpipe.components.example_gen.executor import resolve_span
from ctpipe.components.span_window.executor import SpanWindowError, data_spans, window_spans
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


@pytest.mark.parametrize("newest, window, available, expected", [
    (5, 0, {1, 2, 3, 4, 5}, [1, 2, 3, 4, 5]),
    (5, 2, {1, 2, 3, 4, 5}, [4, 5]),
    (3, 10, {2, 3}, None),
    (4, 0, {2, 3, 4}, [2, 3, 4]),
    (4, 0, {2, 3}, [2, 3, 4]),  # the newest comes from ExampleGen, not the folder
])
def test_window_spans(newest, window, available, expected):
    if expected is None:
        with pytest.raises(SpanWindowError, match=r"spans missing inside the window 1..3: \[1\]"):
            window_spans(newest, window, available)
    else:
        assert window_spans(newest, window, available) == expected
