"""`GatewayOptions`: the gateway's settings (the flags of `ctpipe gateway`). A module of its
own, importing nothing, so that `ctpipe`'s parser can list the flags without loading protos."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class GatewayOptions:
    """Everything the gateway needs; ports as `ctpipe serve` takes them (0: the OS picks the
    gRPC port; REST 0 = off, -1 = the OS picks)."""

    backend: str
    model_config_file: str
    backend_rest: str = ""
    port: int = 8500
    rest_api_port: int = 0
    bind_address: str = "127.0.0.1"
    model_config_file_poll_wait_seconds: float = 1.0
    canary_percent: float = 10.0
    shadow_max_in_flight: int = 16
    shadow_timeout_seconds: float = 2.0
    monitoring_path: str = "/monitoring/prometheus/metrics"
    rest_api_timeout_seconds: float = 30.0
    prediction_log_dir: str = ""
    prediction_log_sampling_rate: float = 1.0
    prediction_log_file_max_bytes: int = 64 * 1024 * 1024
    prediction_log_max_files: int = 10
