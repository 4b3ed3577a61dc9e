"""`ctpipe lineage VERSION`: its command line and its refusals. The lineage of real pushed
versions: tests/test_e2e.py::test_lineage_of_a_pushed_version_in_one_view."""
from __future__ import annotations

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_and_usage_errors(ctpipe, tmp_path):
    shown = ctpipe("lineage", "--help")
    assert (shown.status, shown.err) == (0, "")
    assert shown.out.startswith("usage: ctpipe lineage [-h] --workspace WORKSPACE")
    assert "version" in shown.out and "--logs" in shown.out
    assert_one_line_error(ctpipe("lineage", "--workspace", tmp_path),
                          "the following arguments are required: version")


def test_a_workspace_without_a_store_is_named(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("lineage", "7", "--workspace", tmp_path),
                          f"no metadata store at {tmp_path / 'metadata.sqlite'}")
    assert tree(tmp_path) == {}


def test_a_version_no_run_pushed_is_named(ctpipe, unrun_workspace):
    before = tree(unrun_workspace)
    assert_one_line_error(ctpipe("lineage", "7", "--workspace", unrun_workspace),
                          "no run pushed version 7 in this workspace (pushed: none)")
    assert tree(unrun_workspace) == before
