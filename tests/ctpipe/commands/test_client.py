"""`ctpipe predict`, `ctpipe model-status`, `ctpipe label`, `ctpipe rollback` as a user runs
them: against `ctpipe serve`'s in-process server on 127.0.0.1 (tests/serving/conftest.py), and
on TF Serving's model config file.

Labels moving while a server follows them, over TLS: tests/serving/client/test_client.py;
the registry aliases that follow labels (`--tracking`): tests/ctpipe/commands/test_track.py."""
from __future__ import annotations

import json

import pytest

from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
from ctpipe.serving.client import version_labels
from tests.ctpipe.conftest import assert_one_line_error
from tests.serving.conftest import push_version, reference_scores, start_server  # noqa: F401

MODEL_NAME = DEFAULT_MODEL_NAME


@pytest.fixture()
def served(start_server, saved_model_dir, tmp_path) -> str:  # noqa: F811
    """The gRPC target of a server serving saved_model_dir as version 1."""
    push_version(saved_model_dir, tmp_path / MODEL_NAME, 1)
    handle, _ = start_server(tmp_path / MODEL_NAME)
    return f"127.0.0.1:{handle.port}"


@pytest.fixture()
def model_config(tmp_path):
    """TF Serving's model config of versions 1-3 (folders only), 'stable' on 1."""
    base_path = tmp_path / "models" / MODEL_NAME
    for version in (1, 2, 3):
        (base_path / str(version)).mkdir(parents=True)
    config = tmp_path / "models.config"
    version_labels.write_initial_config(config, MODEL_NAME, str(base_path), {"stable": 1})
    return config


def _labels(config) -> dict[str, int]:
    return version_labels.labels_of(config, MODEL_NAME)


def test_each_command_has_help_naming_its_required_flags(ctpipe):
    for command, required in (("predict", ("--server", "--csv", "--json", "--version",
                                           "--label", "--tls")),
                              ("model-status", ("--server",)),
                              ("label", ("--model-config", "--label", "--version", "--tracking")),
                              ("rollback", ("--model-config", "--label", "--server"))):
        shown = ctpipe(command, "--help")
        assert (shown.status, shown.err) == (0, ""), command
        assert shown.out.startswith(f"usage: ctpipe {command} ")
        for flag in required:
            assert flag in shown.out, (command, flag)


def test_ctpipe_predict_prints_the_served_version(served, reference_scores, tmp_path,
                                                  csv_writer, taxi_rows, ctpipe):
    target = served
    header, rows = taxi_rows
    csv_path = csv_writer(tmp_path / "trips.csv", header, rows[:4])
    answer = ctpipe("predict", "--server", target, "--model", MODEL_NAME, "--csv", csv_path)
    lines = answer.out.splitlines()
    assert lines[0].startswith(f"{MODEL_NAME} version 1 answered (latest, 4 examples")
    expected = reference_scores[:4]  # the SavedModel run in this process on the same trips
    assert [float(line.split("\t")[1]) for line in lines[1:]] == pytest.approx(expected, abs=1e-4)

    json_path = tmp_path / "trips.json"
    json_path.write_text(json.dumps([{"fare": 8.25, "payment_type": "Cash"}]))
    assert "version 1 answered" in ctpipe("predict", "--server", target,
                                          "--json", json_path).out

    missing = ctpipe("predict", "--server", target, "--version", "7", "--csv", csv_path)
    assert missing.status == 1
    assert missing.err.strip() == (
        f"ctpipe: Predict({MODEL_NAME}, version 7) on {target} failed: NOT_FOUND: "
        f"Servable not found for request: Specific({MODEL_NAME}, 7)")


def test_model_status_prints_each_version_and_its_state(served, ctpipe):
    target = served
    shown = ctpipe("model-status", "--server", target)
    assert (shown.status, shown.err) == (0, "")
    assert shown.out == f"{MODEL_NAME} version 1: AVAILABLE\n"
    unknown = ctpipe("model-status", "--server", target, "--model", "no_such_model")
    assert_one_line_error(unknown, f"GetModelStatus(no_such_model) on {target} failed: NOT_FOUND")


def test_predict_names_what_is_wrong_with_its_input(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("predict", "--server", "127.0.0.1:1"),
                          "one of the arguments --csv --json is required")
    assert_one_line_error(ctpipe("predict", "--server", "127.0.0.1:1", "--version", "1",
                                 "--label", "stable", "--csv", "x.csv"),
                          "argument --label: not allowed with argument --version")
    assert_one_line_error(ctpipe("predict", "--server", "127.0.0.1:1", "--csv",
                                 tmp_path / "none.csv"),
                          f"input file not found: {tmp_path / 'none.csv'}")
    (tmp_path / "header.csv").write_text("fare,tips\n")
    assert_one_line_error(ctpipe("predict", "--server", "127.0.0.1:1", "--csv",
                                 tmp_path / "header.csv"),
                          f"{tmp_path / 'header.csv'} holds no rows")
    (tmp_path / "one.json").write_text(json.dumps({"fare": 1}))
    assert_one_line_error(ctpipe("predict", "--server", "127.0.0.1:1", "--json",
                                 tmp_path / "one.json"), "must hold a list of objects")


def test_label_and_rollback_say_what_moved_and_write_it(model_config, ctpipe):
    moved = ctpipe("label", "--model-config", model_config, "--label", "canary", "--version", "3")
    assert (moved.status, moved.err) == (0, "")
    assert moved.out.splitlines() == [
        f"{MODEL_NAME}: label 'canary' unset -> 3 (written to {model_config})",
        "a server polling the file (--model_config_file_poll_wait_seconds) follows it"]
    assert _labels(model_config) == {"stable": 1, "canary": 3}

    promoted = ctpipe("label", "--model-config", model_config, "--label", "stable",
                      "--version", "3")
    assert promoted.out.startswith(f"{MODEL_NAME}: label 'stable' 1 -> 3 (written to ")
    # By default to the version before the current one, whichever the label had before.
    rolled = ctpipe("rollback", "--model-config", model_config)
    assert (rolled.status, rolled.err) == (0, "")
    assert rolled.out.startswith(f"{MODEL_NAME}: label 'stable' 3 -> 2 (written to ")
    assert ctpipe("rollback", "--model-config", model_config, "--version", "1").status == 0
    assert _labels(model_config) == {"stable": 1, "canary": 3}


@pytest.mark.parametrize(("args", "named"), [
    (["label", "--label", "can-ary", "--version", "2"],
     "label name 'can-ary' must match [a-zA-Z0-9_]+"),
    (["label", "--label", "canary", "--version", "9"],
     f"version 9 of '{MODEL_NAME}' not found under "),
    (["label", "--label", "canary", "--version", "2", "--model", "other"], "other"),
    (["rollback", "--label", "canary"], f"model '{MODEL_NAME}' has no label 'canary' to roll back"),
    (["label", "--label", "canary"], "the following arguments are required: --version"),
], ids=["bad-name", "no-such-version", "no-such-model", "no-such-label", "no-version"])
def test_a_refused_label_change_leaves_the_config_as_it_was(model_config, ctpipe, args, named):
    before = model_config.read_bytes()
    assert_one_line_error(ctpipe(args[0], "--model-config", model_config, *args[1:]), named)
    assert model_config.read_bytes() == before


def test_a_missing_config_file_is_named(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("label", "--model-config", tmp_path / "models.config",
                                 "--label", "stable", "--version", "1"),
                          f"model config file not found: {tmp_path / 'models.config'}")
    assert not (tmp_path / "models.config").exists()
