"""TF Serving's command-line flags, parsed into `ServerOptions` (no TensorFlow import here, so
that `ctpipe`'s parser stays cheap).

Flags keep `tensorflow_model_server`'s names and both spellings `--flag=value` / `--flag value`;
booleans accept `--flag`, `--flag=true|false|1|0`. Flags of our own (bind address, prediction-log
rotation) are marked "ours" in their help. Unknown flags raise `FlagError` naming every one.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

from ctpipe.common.errors import UserError

# Our default bind address (TF Serving binds every interface).
LOOPBACK = "127.0.0.1"


class FlagError(UserError):
    """A command line that `tensorflow_model_server` would also reject."""


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything `ctpipe.serving.server.model_server.start` needs; defaults are TF Serving's."""

    port: int = 8500
    grpc_bind_address: str = LOOPBACK
    rest_api_port: int = 0  # ours: -1 lets the OS pick a free port (tests)
    rest_api_timeout_in_ms: int = 30_000
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    ssl_config_file: str = ""
    allow_version_labels_for_unavailable_models: bool = False
    enable_signature_method_name_check: bool = False
    grpc_max_threads: int = 16
    prediction_log_file_prefix: str = ""
    prediction_log_sampling_rate: float = 1.0
    prediction_log_file_max_bytes: int = 64 * 1024 * 1024
    prediction_log_max_files: int = 10


_HELP = {
    "port": "gRPC port (0: let the OS pick)",
    "grpc_bind_address": "ours: address both ports bind to (TF Serving binds 0.0.0.0)",
    "rest_api_port": "REST/HTTP port; 0 (default) turns REST and Prometheus metrics off; "
                     "ours: -1 lets the OS pick",
    "rest_api_timeout_in_ms": "REST request timeout",
    "model_name": "model name when serving a single model",
    "model_base_path": "folder of numbered version folders (single model)",
    "model_config_file": "text ModelServerConfig (several models, policies, labels, logging)",
    "model_config_file_poll_wait_seconds": "re-read --model_config_file this often (0: never)",
    "file_system_poll_wait_seconds": "poll base paths this often (0: once, negative: never)",
    "max_num_load_retries": "retries of a failed version load",
    "load_retry_interval_micros": "wait between load retries",
    "enable_batching": "batch concurrent requests on the server",
    "batching_parameters_file": "text BatchingParameters",
    "monitoring_config_file": "text MonitoringConfig (prometheus_config { enable path })",
    "ssl_config_file": "text SSLConfig (server_key, server_cert, custom_ca, client_verify)",
    "allow_version_labels_for_unavailable_models": "new labels may point at unloaded versions",
    "enable_signature_method_name_check": "Classify/Regress require the signature's method "
                                          "name (TF1 exports); off: any signature of the "
                                          "right shape",
    "grpc_max_threads": "ours: gRPC worker threads",
    "prediction_log_file_prefix": "ours: single model: write sampled PredictionLog TFRecords "
                                  "to <prefix>-NNNNN.tfrecord (model config: logging_config)",
    "prediction_log_sampling_rate": "ours: single model: share of requests logged (0..1)",
    "prediction_log_file_max_bytes": "ours: rotate a prediction log file past this size",
    "prediction_log_max_files": "ours: keep this many prediction log files per model",
}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds every flag of ServerOptions to `parser` (used by `ctpipe serve` and parse_flags)."""
    for field in dataclasses.fields(ServerOptions):
        flag = f"--{field.name}"
        if field.type in ("bool", bool):
            parser.add_argument(flag, type=_bool, nargs="?", const=True, default=field.default,
                                help=_HELP[field.name])
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(flag, type=kind, default=field.default, help=_HELP[field.name])


def options_from_args(namespace: argparse.Namespace) -> ServerOptions:
    """The parsed flags -> checked ServerOptions (FlagError names what was wrong)."""
    names = {field.name for field in dataclasses.fields(ServerOptions)}
    options = ServerOptions(**{k: v for k, v in vars(namespace).items() if k in names})
    if not options.model_config_file and not options.model_base_path:
        raise FlagError("either --model_base_path or --model_config_file must be given")
    if options.model_config_file and options.model_base_path:
        raise FlagError("--model_base_path and --model_config_file are mutually exclusive")
    if not 0 <= options.prediction_log_sampling_rate <= 1:
        raise FlagError("--prediction_log_sampling_rate must be within [0, 1]")
    return options


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit(2)
        raise FlagError(message)


def parse_flags(argv: Sequence[str]) -> ServerOptions:
    """`tensorflow_model_server`-style flags -> ServerOptions; FlagError names what was wrong."""
    parser = _RaisingParser(prog="ctpipe serve", allow_abbrev=False)
    add_flags(parser)
    namespace, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise FlagError(f"unknown flag(s): {' '.join(unknown)}")
    return options_from_args(namespace)
