"""`ctpipe gateway`: its help (TF Serving's flag names) and the flag values it refuses before
anything starts. The gateway as its own process in front of a real server, and a model config
file it cannot read: tests/serving/gateway/test_gateway.py::
test_ctpipe_gateway_runs_as_its_own_process (with the gateway's own tests)."""
from __future__ import annotations

import dataclasses

import pytest

from ctpipe.serving.gateway.options import GatewayOptions
from tests.ctpipe.conftest import assert_one_line_error


def test_help_shows_a_flag_per_option(ctpipe):
    shown = ctpipe("gateway", "--help")
    assert (shown.status, shown.err) == (0, "")
    for field in dataclasses.fields(GatewayOptions):
        assert f"--{field.name} " in shown.out, field.name
    assert_one_line_error(ctpipe("gateway", "--backend=127.0.0.1:1"),
                          "the following arguments are required: --model_config_file")


@pytest.mark.parametrize(("flags", "named"), [
    (["--canary_percent=150"], "--canary_percent must be within [0, 100], got 150.0"),
    (["--prediction_log_sampling_rate=2"], "--prediction_log_sampling_rate must be within [0, 1]"),
    (["--rest_api_port=-1"], "--rest_api_port needs --backend_rest"),
    (["--port=http"], "argument --port: invalid int value: 'http'"),
], ids=["canary", "sampling", "rest-without-backend", "port"])
def test_bad_values_are_named_before_anything_starts(ctpipe, tmp_path, flags, named):
    assert_one_line_error(ctpipe("gateway", "--backend=127.0.0.1:1",
                                 f"--model_config_file={tmp_path / 'models.config'}", *flags),
                          named)
