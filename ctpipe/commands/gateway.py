"""`ctpipe gateway`: the TF Serving gateway (serving/gateway), started with flags named like
TF Serving's where they mean the same thing."""
from __future__ import annotations

import argparse
import dataclasses

from ctpipe.common.errors import UserError

_HELP = {
    "backend": "gRPC address of TF Serving (or ctpipe serve), e.g. 127.0.0.1:9500",
    "model_config_file": "TF Serving's model config file the backend polls: version labels "
                         "stable/canary/shadow are read from it",
    "backend_rest": "REST address of the backend (needed when --rest_api_port is on)",
    "port": "gRPC port (0: the OS picks)",
    "rest_api_port": "REST port with the Prometheus metrics (0: off, -1: the OS picks)",
    "bind_address": "address both ports bind to (0.0.0.0 in a pod)",
    "model_config_file_poll_wait_seconds": "re-read the model config file this often",
    "canary_percent": "share of default-path requests sent to the 'canary' label (0-100)",
    "shadow_max_in_flight": "shadow copies out at once; more are dropped (and counted)",
    "shadow_timeout_seconds": "a shadow copy still unanswered after this is abandoned",
    "monitoring_path": "path of the Prometheus metrics on the REST port",
    "rest_api_timeout_seconds": "REST request timeout towards the backend",
    "prediction_log_dir": "write sampled PredictionLog TFRecords to DIR/<model>-NNNNN.tfrecord",
    "prediction_log_sampling_rate": "share of requests logged (0..1)",
    "prediction_log_file_max_bytes": "rotate a prediction log file past this size",
    "prediction_log_max_files": "keep this many prediction log files per model",
}


def _cmd_gateway(args: argparse.Namespace) -> None:
    from ctpipe.serving.client.errors import ClientError
    from ctpipe.serving.gateway.options import GatewayOptions
    from ctpipe.serving.gateway.server import serve

    names = {field.name for field in dataclasses.fields(GatewayOptions)}
    options = GatewayOptions(**{k: v for k, v in vars(args).items() if k in names})
    if not 0 <= options.canary_percent <= 100:
        raise UserError(f"--canary_percent must be within [0, 100], got {options.canary_percent}")
    if not 0 <= options.prediction_log_sampling_rate <= 1:
        raise UserError("--prediction_log_sampling_rate must be within [0, 1]")
    if options.rest_api_port and not options.backend_rest:
        raise UserError("--rest_api_port needs --backend_rest (the backend's REST address)")
    try:
        serve(options)
    except (ClientError, OSError) as err:
        raise UserError(f"gateway failed to start: {err}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    from ctpipe.serving.gateway.options import GatewayOptions

    parser = subparsers.add_parser(
        "gateway", allow_abbrev=False,
        help="TF Serving gateway: prediction logs, metrics, canary, shadow, rollback",
        description="A front for TF Serving (or ctpipe serve) on loopback: same gRPC and REST "
                    "APIs; default traffic goes to the 'stable' label, a share to 'canary', a "
                    "copy to 'shadow' (labels from --model_config_file).")
    for field in dataclasses.fields(GatewayOptions):
        required = field.default is dataclasses.MISSING
        kind = {"int": int, "float": float}.get(str(field.type), str)
        parser.add_argument(f"--{field.name}", type=kind, required=required,
                            default=None if required else field.default, help=_HELP[field.name])
    parser.set_defaults(handler=_cmd_gateway)
