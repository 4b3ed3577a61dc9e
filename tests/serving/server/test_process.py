"""TF Serving's flags as `ctpipe serve` parses them, and a server process that cannot start.
`ctpipe serve` as a user runs it: tests/ctpipe/commands/test_serve.py."""
from __future__ import annotations

import pytest

from ctpipe.program import program
from ctpipe.serving.server.errors import StartupError
from ctpipe.serving.server.flags import FlagError, parse_flags
from ctpipe.serving.server.process import ServerProcess
from tests.serving.conftest import MODEL_NAME


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


def test_a_server_process_that_cannot_start_reports_why(tmp_path):
    # A flag error ends `ctpipe serve` before it loads TensorFlow: a quick exit to observe.
    with pytest.raises(StartupError, match=r"exited with status 1 before serving:\n"
                                           r"[\s\S]*ctpipe: either --model_base_path or"):
        ServerProcess(program("serve"), [f"--model_name={MODEL_NAME}"], tmp_path / "serve.log")
