"""`ctpipe monitor`: its help and the refusals that save no summary. Its runs on real
prediction logs of a real server (exit 0 within thresholds, 3 when crossed, the summary saved,
and in its own process as a CronJob runs it): tests/monitoring/test_monitor.py."""
from __future__ import annotations

from tests.ctpipe.conftest import assert_one_line_error, tree


def test_help_gives_the_window_and_the_exit_statuses(ctpipe):
    shown = ctpipe("monitor", "--help")
    assert (shown.status, shown.err) == (0, "")
    for text in ("--logs PREFIX", "--workspace", "--model-base-path", "--last N",
                 "(default 10000)", "--min-examples N", "(default 200)", "--json", "--save"):
        assert text in shown.out, text
    assert "Exit status 0 when nothing crosses a threshold, 3 when something does" in \
        " ".join(shown.out.split())
    assert_one_line_error(ctpipe("monitor", "--logs", "x"),
                          "one of the arguments --workspace --model-base-path is required")
    assert_one_line_error(ctpipe("monitor", "--logs", "x", "--workspace", "w",
                                 "--model-base-path", "m"),
                          "argument --model-base-path: not allowed with argument --workspace")


def test_bad_input_is_named_and_no_summary_is_saved(ctpipe, tmp_path):
    workspace, logs = tmp_path / "ws", tmp_path / "logs" / "big_tipper"
    assert_one_line_error(ctpipe("monitor", "--logs", logs, "--workspace", workspace,
                                 "--last", "0"),
                          "--last and --min-examples must be at least 1")
    assert_one_line_error(ctpipe("monitor", "--logs", logs, "--workspace", workspace),
                          f"model base path {workspace / 'serving' / 'big_tipper'} does not "
                          "exist")
    (workspace / "serving" / "big_tipper" / "1").mkdir(parents=True)
    before = tree(workspace)
    assert_one_line_error(ctpipe("monitor", "--logs", logs, "--workspace", workspace,
                                 "--save", tmp_path / "summary.json"),
                          f"no prediction log files match {logs}-*.tfrecord")
    assert tree(workspace) == before and not (tmp_path / "summary.json").exists()
