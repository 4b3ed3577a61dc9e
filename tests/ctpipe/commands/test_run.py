"""`ctpipe run`: its command line and the refusals that come before any pipeline starts, which
leave the workspace as it was. Real runs (cached re-runs, "nothing new", a missing span,
anomalies, drift, concept drift) as users run them: tests/test_e2e.py."""
from __future__ import annotations

import pytest

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_names_the_data_the_workspace_and_the_settings(ctpipe):
    shown = ctpipe("run", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--data", "--workspace", "--window", "--train-steps", "--span", "--rerun",
                 "--config"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("run", "--data", "spans"),
                          "the following arguments are required: --workspace")


@pytest.fixture
def folders(tmp_path):
    """An empty data folder, and a workspace holding an earlier run's file."""
    (tmp_path / "data").mkdir()
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "metadata.sqlite").write_bytes(b"an earlier run's store")
    return tmp_path / "data", tmp_path / "ws"


@pytest.mark.parametrize(("flags", "named"), [
    (["--window", "-1"], "config: 'window' must be >= 0, got -1"),
    (["--train-steps", "0"], "config: 'train_steps' must be positive, got 0"),
    (["--config", "{missing}"], "config file not found: {missing}"),
    (["--config", "{typo}"], "unknown setting(s): windw"),
], ids=["window", "train-steps", "missing-config", "unknown-setting"])
def test_bad_settings_are_named_before_anything_runs(ctpipe, folders, tmp_path, flags, named):
    data, workspace = folders
    (tmp_path / "typo.yaml").write_text("windw: 3\n")
    paths = {"missing": tmp_path / "none.yaml", "typo": tmp_path / "typo.yaml"}
    flags = [flag.format(**paths) for flag in flags]
    before = tree(workspace)
    assert_one_line_error(ctpipe("run", "--data", data, "--workspace", workspace, *flags),
                          named.format(**paths))
    assert tree(workspace) == before


def test_missing_data_is_named_and_no_workspace_is_made(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("run", "--data", tmp_path / "spans", "--workspace",
                                 tmp_path / "ws"),
                          f"data folder not found: {tmp_path / 'spans'}")
    (tmp_path / "spans").mkdir()
    assert_one_line_error(ctpipe("run", "--data", tmp_path / "spans", "--workspace",
                                 tmp_path / "ws"), "span-{SPAN}/*.csv")
    assert not (tmp_path / "ws").exists()
