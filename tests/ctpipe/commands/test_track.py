"""The registry's aliases follow `ctpipe label` and `ctpipe rollback` given `--tracking`, as a
user runs them (a real MLflow store in SQLite); records kept for later with a workspace's
`ctpipe track sync`, and its command line. Records an unreachable, then reachable, MLflow
server receives on `ctpipe track sync`: tests/tracking/test_outbox.py."""
from __future__ import annotations

from ctpipe import cli
from ctpipe.serving.client import version_labels
from ctpipe.tracking import outbox, store
from ctpipe.tracking.options import workspace_outbox
from tests.ctpipe.conftest import assert_one_line_error
from tests.tracking.conftest import constant_model_dir, push_version, register_versions  # noqa: F401


def test_label_and_rollback_move_the_registry_aliases(tmp_path, capsys, constant_model_dir):
    base = tmp_path / "big_tipper"
    for version in (101, 102, 103):
        push_version(constant_model_dir, base, version)
    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    registry = register_versions(uri, base, [101, 102], tmp_path / "artifacts")
    config = tmp_path / "models.config"
    version_labels.write_initial_config(config, "big_tipper", str(base), {"stable": 101})
    aliases = lambda: dict(store.client(uri).get_registered_model("big_tipper").aliases)

    assert cli.main(["label", "--model-config", str(config), "--label", "canary",
                     "--version", "102", "--tracking", uri]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("big_tipper: label 'canary' unset -> 102")
    assert f"tracking: alias 'challenger' -> version {registry[102]} (serving version 102, " \
           "label 'canary')" in printed
    assert aliases() == {"champion": registry[101], "challenger": registry[102]}

    assert cli.main(["label", "--model-config", str(config), "--label", "stable",
                     "--version", "102", "--tracking", uri]) == 0
    assert aliases() == {"champion": registry[102], "challenger": registry[102]}
    assert cli.main(["rollback", "--model-config", str(config), "--tracking", uri]) == 0
    assert aliases() == {"champion": registry[101], "challenger": registry[102]}
    capsys.readouterr()

    # A version pushed while tracking was off: the label moves, the alias cannot; said so.
    assert cli.main(["label", "--model-config", str(config), "--label", "canary",
                     "--version", "103", "--tracking", uri]) == 0
    assert "tracking: alias 'challenger' not moved: serving version 103 ('canary') is not " \
           "registered (pushed while tracking was off?)" in capsys.readouterr().out
    assert not outbox.pending(tmp_path / "tracking-outbox"), "every record was delivered"


def test_track_sync_of_a_workspace_with_nothing_kept(tmp_path, capsys):
    assert cli.main(["track", "sync", "--workspace", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == (f"nothing to send: {workspace_outbox(tmp_path)} holds "
                                               "no tracking record")


def test_help_and_usage_errors(ctpipe):
    shown = ctpipe("track", "sync", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--workspace", "--outbox", "--timeout"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("track"), "the following arguments are required: track_command")
    assert_one_line_error(ctpipe("track", "sync"),
                          "one of the arguments --workspace --outbox is required")
    assert_one_line_error(ctpipe("track", "sync", "--outbox", "o", "--timeout", "soon"),
                          "argument --timeout: invalid float value: 'soon'")


def test_sync_of_an_outbox_that_is_not_there_makes_none(ctpipe, tmp_path):
    synced = ctpipe("track", "sync", "--outbox", tmp_path / "outbox")
    assert (synced.status, synced.err) == (0, "")
    assert synced.out == f"nothing to send: {tmp_path / 'outbox'} holds no tracking record\n"
    assert list(tmp_path.iterdir()) == []
