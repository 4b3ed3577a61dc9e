"""`ctpipe report`: its command line and its refusals, which write no page. The page of real
runs, opened in Chromium: tests/test_e2e.py::
test_the_report_of_every_run_opens_in_chromium_with_every_plot_drawn; its sections:
tests/reporting/."""
from __future__ import annotations

from ctpipe import cli
from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_and_usage_errors(ctpipe, tmp_path):
    shown = ctpipe("report", "--help")
    assert (shown.status, shown.err) == (0, "")
    assert "--workspace" in shown.out and "--out" in shown.out
    assert_one_line_error(ctpipe("report", "--workspace", tmp_path),
                          "the following arguments are required: --out")


def test_a_workspace_without_a_metadata_store_is_named(tmp_path, capsys):
    """Moved from tests/reporting/test_report.py."""
    code = cli.main(["report", "--workspace", str(tmp_path), "--out", str(tmp_path / "r.html")])

    assert code == 1
    error = capsys.readouterr().err
    assert f"no metadata store at {tmp_path / 'metadata.sqlite'}" in error
    assert not (tmp_path / "r.html").exists()


def test_a_missing_workspace_or_one_without_runs_writes_no_page(ctpipe, unrun_workspace,
                                                                 tmp_path):
    page = tmp_path / "report.html"
    assert_one_line_error(ctpipe("report", "--workspace", tmp_path / "none", "--out", page),
                          f"workspace not found: {tmp_path / 'none'}")
    before = tree(unrun_workspace)
    assert_one_line_error(ctpipe("report", "--workspace", unrun_workspace, "--out", page),
                          f"no run recorded in {unrun_workspace}: run `ctpipe run` first")
    assert not page.exists() and tree(unrun_workspace) == before
