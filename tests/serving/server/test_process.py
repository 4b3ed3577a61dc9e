"""`ctpipe serve` with TF Serving's flags: real subprocesses, plus in-process flag checks."""
from __future__ import annotations

import pytest

from ctpipe import cli
from ctpipe.program import program
from ctpipe.serving.server.errors import StartupError
from ctpipe.serving.server.flags import FlagError, parse_flags
from ctpipe.serving.server.process import ServerProcess
from tests.serving.conftest import MODEL_NAME, Stubs, predict_request, push_version


def test_flags_take_both_spellings_and_tf_serving_defaults():
    options = parse_flags(["--model_name=m", "--model_base_path", "/x", "--enable_batching",
                           "--rest_api_port=8501", "--file_system_poll_wait_seconds", "0"])
    assert (options.model_name, options.model_base_path, options.enable_batching) == ("m", "/x", True)
    assert (options.port, options.rest_api_port, options.file_system_poll_wait_seconds) == (8500, 8501, 0)
    assert options.max_num_load_retries == 5 and options.load_retry_interval_micros == 60_000_000
    assert parse_flags(["--model_base_path=/x", "--enable_batching=false"]).enable_batching is False
    with pytest.raises(FlagError, match="--model_basepath=/x --bogus"):
        parse_flags(["--model_basepath=/x", "--bogus"])
    with pytest.raises(FlagError, match="--model_base_path or --model_config_file"):
        parse_flags(["--port=1"])


def test_unknown_flag_is_named_by_the_cli(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--model_base_path=/x", "--modle_name=m"])
    assert "--modle_name=m" in capsys.readouterr().err


def test_failed_start_is_reported_as_tf_serving_does(tmp_path, saved_model_dir, capsys):
    version = push_version(saved_model_dir, tmp_path / "m", 1)
    (version / "saved_model.pb").write_bytes(b"broken")
    status = cli.main(["serve", "--port=0", f"--model_base_path={tmp_path / 'm'}",
                       "--max_num_load_retries=0"])
    assert status == 1
    assert "Failed to start server" in capsys.readouterr().err


def test_ctpipe_serve_subprocess_serves_until_terminated(tmp_path, saved_model_dir,
                                                        serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 5)
    server = ServerProcess(program("serve"), [f"--model_name={MODEL_NAME}", f"--model_base_path={tmp_path / 'm'}",
                            "--file_system_poll_wait_seconds=1"], tmp_path / "serve.log")
    try:
        assert server.target == f"127.0.0.1:{server.port}"
        stubs = Stubs(server.port)
        response = stubs.prediction.Predict(predict_request(serialized_examples[:2]), timeout=30)
        assert response.model_spec.version.value == 5
        stubs.close()
    finally:
        returncode = server.stop(timeout=60)  # SIGTERM: a clean stop
    assert returncode == 0, server.output_tail()


def test_a_server_process_that_cannot_start_reports_why(tmp_path):
    # A flag error ends `ctpipe serve` before it loads TensorFlow: a quick exit to observe.
    with pytest.raises(StartupError, match=r"exited with status 1 before serving:\n"
                                           r"[\s\S]*ctpipe: either --model_base_path or"):
        ServerProcess(program("serve"), [f"--model_name={MODEL_NAME}"], tmp_path / "serve.log")
