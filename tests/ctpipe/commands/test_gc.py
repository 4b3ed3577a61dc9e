"""`ctpipe gc`: its command line and its refusals, and a store without runs. What it keeps and
deletes in a workspace of real runs (and a kill and a racing run): tests/test_e2e.py::
test_gc_keeps_what_serving_and_runs_need_and_survives_a_kill_and_a_racing_run."""
from __future__ import annotations

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_names_the_dry_run(ctpipe):
    shown = ctpipe("gc", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--workspace", "--config", "--keep-runs", "--dry-run"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("gc", "--dry-run"),
                          "the following arguments are required: --workspace")


def test_bad_input_is_named_and_nothing_is_deleted(ctpipe, unrun_workspace, tmp_path):
    before = tree(unrun_workspace)
    assert_one_line_error(ctpipe("gc", "--workspace", unrun_workspace, "--keep-runs", "0"),
                          "keep_runs must be at least 1")
    assert_one_line_error(ctpipe("gc", "--workspace", unrun_workspace, "--config",
                                 tmp_path / "nope.yaml"),
                          f"config file not found: {tmp_path / 'nope.yaml'}")
    (tmp_path / "typo.yaml").write_text("gc_keep_run: 2\n")
    assert_one_line_error(ctpipe("gc", "--workspace", unrun_workspace, "--config",
                                 tmp_path / "typo.yaml"), "unknown setting(s): gc_keep_run")
    assert tree(unrun_workspace) == before
    assert_one_line_error(ctpipe("gc", "--workspace", tmp_path / "none"),
                          f"no metadata store at {tmp_path / 'none' / 'metadata.sqlite'}")
    assert not (tmp_path / "none").exists()


def test_a_store_without_runs_has_nothing_to_delete(ctpipe, unrun_workspace):
    listed = ctpipe("gc", "--workspace", unrun_workspace, "--dry-run", "--keep-runs", "2")
    assert (listed.status, listed.err) == (0, "")
    assert listed.out == "gc: would delete 0 artifacts, 0.0 MB (keeping the newest 2 runs)\n"
    done = ctpipe("gc", "--workspace", unrun_workspace)
    assert (done.status, done.out) == (0, "gc: deleting 0 artifacts, 0.0 MB (keeping the "
                                          "newest 1 runs)\n")
