"""`ctpipe status`: its command line, a workspace without a store, and one whose store holds
no run yet. A workspace of real runs: tests/test_e2e.py
(test_gc_keeps_what_serving_and_runs_need_and_survives_a_kill_and_a_racing_run ends with it)."""
from __future__ import annotations

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_and_usage_errors(ctpipe, tmp_path):
    shown = ctpipe("status", "--help")
    assert (shown.status, shown.err) == (0, "")
    assert "--workspace" in shown.out and "--limit" in shown.out
    assert_one_line_error(ctpipe("status"), "the following arguments are required: --workspace")
    assert_one_line_error(ctpipe("status", "--workspace", tmp_path, "--limit", "ten"),
                          "argument --limit: invalid int value: 'ten'")
    for limit in ("0", "-1"):
        assert_one_line_error(ctpipe("status", "--workspace", tmp_path, "--limit", limit),
                              f"--limit must be at least 1, got {limit}")


def test_a_workspace_without_a_store_is_named_and_left_alone(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("status", "--workspace", tmp_path),
                          f"no metadata store at {tmp_path / 'metadata.sqlite'}: has a run "
                          "happened in this workspace?")
    assert tree(tmp_path) == {}
    assert_one_line_error(ctpipe("status", "--workspace", tmp_path / "ws"), "no metadata store")
    assert not (tmp_path / "ws").exists()


def test_a_store_without_runs_shows_each_section_empty(ctpipe, unrun_workspace):
    before = tree(unrun_workspace)
    shown = ctpipe("status", "--workspace", unrun_workspace)
    assert (shown.status, shown.err) == (0, "")
    assert shown.out.splitlines() == [
        f"Workspace {unrun_workspace}", "",
        "Recent runs (0):", "  none", "",
        "Pushed versions (TF Serving serves the newest):", "  none", "",
        "Drift and concept drift by span (before training on it):", "  none recorded", "",
        "Drift scores by span (score / threshold; above 1 is drift, marked !):",
        "  none recorded"]
    assert tree(unrun_workspace) == before, "status only reads"
