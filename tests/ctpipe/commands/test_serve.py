"""`ctpipe serve` with TF Serving's flags, as a user runs it: its help, the flag errors it
names, a failed start reported as TF Serving reports it, and a real process serving until it
is terminated. The server's behaviour: tests/serving/server/."""
from __future__ import annotations

import pytest

from ctpipe import cli
from ctpipe.program import program
from ctpipe.serving.server.process import ServerProcess
from tests.ctpipe.conftest import assert_one_line_error
from tests.serving.conftest import MODEL_NAME, Stubs, predict_request, push_version


def test_help_shows_tf_servings_flags(ctpipe):
    shown = ctpipe("serve", "--help")
    assert (shown.status, shown.err) == (0, "")
    for flag in ("--port", "--rest_api_port", "--model_name", "--model_base_path",
                 "--model_config_file", "--file_system_poll_wait_seconds",
                 "--prediction_log_file_prefix"):
        assert flag in shown.out
    assert_one_line_error(ctpipe("serve"),
                          "either --model_base_path or --model_config_file must be given")
    assert_one_line_error(ctpipe("serve", "--model_base_path=/x", "--port=abc"),
                          "argument --port: invalid int value: 'abc'")


def test_unknown_flag_is_named_by_the_cli(capsys):
    """Moved from tests/serving/server/test_process.py."""
    with pytest.raises(SystemExit):
        cli.main(["serve", "--model_base_path=/x", "--modle_name=m"])
    assert "--modle_name=m" in capsys.readouterr().err


def test_failed_start_is_reported_as_tf_serving_does(tmp_path, saved_model_dir, capsys):
    """Moved from tests/serving/server/test_process.py."""
    version = push_version(saved_model_dir, tmp_path / "m", 1)
    (version / "saved_model.pb").write_bytes(b"broken")
    status = cli.main(["serve", "--port=0", f"--model_base_path={tmp_path / 'm'}",
                       "--max_num_load_retries=0"])
    assert status == 1
    assert "Failed to start server" in capsys.readouterr().err


def test_ctpipe_serve_subprocess_serves_until_terminated(tmp_path, saved_model_dir,
                                                        serialized_examples):
    """Moved from tests/serving/server/test_process.py: the process announces
    `Serving on HOST:PORT` (ServerProcess reads it), answers, and ends cleanly on SIGTERM."""
    push_version(saved_model_dir, tmp_path / "m", 5)
    server = ServerProcess(program("serve"), [f"--model_name={MODEL_NAME}",
                                              f"--model_base_path={tmp_path / 'm'}",
                                              "--file_system_poll_wait_seconds=1"],
                           tmp_path / "serve.log")
    try:
        assert server.target == f"127.0.0.1:{server.port}"
        stubs = Stubs(server.port)
        response = stubs.prediction.Predict(predict_request(serialized_examples[:2]), timeout=30)
        assert response.model_spec.version.value == 5
        stubs.close()
    finally:
        returncode = server.stop(timeout=60)  # SIGTERM: a clean stop
    assert returncode == 0, server.output_tail()
