"""`ctpipe schema show | accept | bootstrap`: the curated schema as a user reads it, and the
refusals that leave it unchanged. `schema accept` on a run's anomalies: tests/test_e2e.py::
test_the_readme_schema_accept_workflow."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ctpipe.pipeline.config import DEFAULT_SCHEMA
from ctpipe.program import program
from tests.ctpipe.conftest import assert_one_line_error


def test_help_and_usage_errors(ctpipe):
    shown = ctpipe("schema", "--help")
    assert (shown.status, shown.err) == (0, "")
    assert "{show,accept,bootstrap}" in shown.out
    assert_one_line_error(ctpipe("schema"),
                          "the following arguments are required: schema_command")
    assert_one_line_error(ctpipe("schema", "accept"),
                          "the following arguments are required: --workspace")


def test_show_lists_every_feature_of_the_curated_schema(ctpipe, tmp_path):
    shown = ctpipe("schema", "show")
    assert (shown.status, shown.err) == (0, "")
    schema = text_format.Parse(Path(DEFAULT_SCHEMA).read_text(), schema_pb2.Schema())
    rows = {line.split()[0]: line for line in shown.out.splitlines() if line.startswith("  ")}
    assert set(rows) >= {feature.name for feature in schema.feature}
    assert "required range [0, 23] categorical" in rows["trip_start_hour"]
    assert "(drift-exempt)" in rows["trip_start_timestamp"]
    assert shown.out.startswith(f"{DEFAULT_SCHEMA}: {len(schema.feature)} features, ")
    copy = shutil.copy(DEFAULT_SCHEMA, tmp_path / "schema.pbtxt")
    of_copy = ctpipe("schema", "show", "--schema", copy).out
    assert of_copy.startswith(f"{copy}: ")
    assert of_copy.splitlines()[1:] == shown.out.splitlines()[1:]


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`ctpipe schema show | head`: the reader has closed the pipe when the listing is written
    (here before it starts, so that the write always fails)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        shown = subprocess.run([*program("schema"), "show"], stdout=write_end,
                               stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert shown.returncode == 128 + signal.SIGPIPE
    assert "Traceback" not in shown.stderr and "BrokenPipeError" not in shown.stderr


def test_a_missing_or_broken_schema_file_is_named(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("schema", "show", "--schema", tmp_path / "none.pbtxt"),
                          f"schema file not found: {tmp_path / 'none.pbtxt'}")
    (tmp_path / "broken.pbtxt").write_text("feture { name: 'fare' }\n")
    assert_one_line_error(ctpipe("schema", "show", "--schema", tmp_path / "broken.pbtxt"),
                          f"schema file {tmp_path / 'broken.pbtxt'} is not a valid Schema")


@pytest.mark.parametrize(("command", "needs"), [("accept", "ExampleStatistics"),
                                               ("bootstrap", "Schema")])
def test_without_a_run_the_schema_stays_as_it_was(ctpipe, unrun_workspace, tmp_path, command,
                                                  needs):
    schema = shutil.copy(DEFAULT_SCHEMA, tmp_path / "schema.pbtxt")
    before = schema.read_bytes()
    assert_one_line_error(ctpipe("schema", command, "--workspace", unrun_workspace, "--schema",
                                 schema),
                          f"no {needs} in {unrun_workspace}: run the pipeline first")
    assert_one_line_error(ctpipe("schema", command, "--workspace", tmp_path / "none",
                                 "--schema", schema), "no metadata store at ")
    assert schema.read_bytes() == before
