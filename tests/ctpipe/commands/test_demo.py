"""`ctpipe demo`: its command line and its refusals, which come before anything is written.

Its success path is two pipeline runs with a server between them (`make demo`, minutes), which
no test starts; the runs it makes are `ctpipe run`'s, covered end to end by tests/test_e2e.py,
and the server it starts is `ctpipe serve` (tests/ctpipe/commands/test_serve.py)."""
from __future__ import annotations

import pytest

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_names_the_workspace_and_the_arrivals(ctpipe):
    shown = ctpipe("demo", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--workspace", "--initial-spans", "--train-steps"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("demo"), "the following arguments are required: --workspace")


@pytest.mark.parametrize(("flags", "named"), [
    (["--initial-spans", "0"], "--initial-spans must be within 1..15 (the shipped trips cover "
                               "16 quarters), got 0"),
    (["--initial-spans", "16"], "--initial-spans must be within 1..15"),
    (["--train-steps", "0"], "'train_steps' must be positive, got 0"),
    (["--train-steps", "-5"], "'train_steps' must be positive, got -5"),
], ids=["no-span-first", "no-span-left", "zero-steps", "negative-steps"])
def test_bad_settings_are_refused_before_anything_is_written(ctpipe, tmp_path, flags, named):
    workspace = tmp_path / "demo"
    assert_one_line_error(ctpipe("demo", "--workspace", workspace, *flags), named)
    assert not workspace.exists()
    # A workspace of an earlier demo keeps its arrivals.
    (workspace / "data" / "span-3").mkdir(parents=True)
    (workspace / "data" / "span-3" / "data.csv").write_text("trips\n")
    before = tree(workspace)
    assert_one_line_error(ctpipe("demo", "--workspace", workspace, *flags), named)
    assert tree(workspace) == before
