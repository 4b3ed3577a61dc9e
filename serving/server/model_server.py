"""`ctpipe serve`: a model server that keeps TensorFlow Serving's gRPC/REST contract.

Python API (tests, benchmarks, embedding)::

    from ctpipe.serving.server.flags import ServerOptions, parse_flags
    from ctpipe.serving.server.model_server import start

    handle = start(ServerOptions(port=0, model_name="big_tipper",
                                 model_base_path="/ws/serving/big_tipper"))
    handle.port        # gRPC port actually bound (0 asks the OS for a free one)
    handle.rest_port   # REST port, or None when REST is off (rest_api_port=0; -1: OS picks)
    handle.stop()

`start` returns only once every configured model has an AVAILABLE version (TF Serving's
start-up rule); it raises `StartupError` otherwise. `parse_flags(argv)` turns
`tensorflow_model_server` flags into `ServerOptions`. The server binds 127.0.0.1 unless
`--grpc_bind_address` says otherwise (TF Serving binds every interface).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Callable

from tensorflow_serving.config import logging_config_pb2, model_server_config_pb2

from ctpipe.serving.server import config_files, rest_api
from ctpipe.serving.server.batching import BatchingRunner
from ctpipe.serving.server.errors import RequestError, StartupError
from ctpipe.serving.server.flags import ServerOptions
from ctpipe.serving.server.frontend import Frontend
from ctpipe.serving.server.grpc_api import GrpcServer
from ctpipe.serving.server.inference import InferenceService, direct_runner
from ctpipe.serving.server.lifecycle import ModelManager
from ctpipe.serving.server.metrics import ServerMetrics

log = logging.getLogger(__name__)
# How often `serve` looks whether SIGINT or SIGTERM came.
_SIGNAL_POLL_SECONDS = 0.2


@dataclasses.dataclass
class ServerHandle:
    """A running server: `.port`, `.rest_port`, `.manager`, `.stop()`."""

    port: int
    rest_port: int | None
    frontend: Frontend
    _grpc_server: GrpcServer
    _stop_extras: Callable[[], None]

    @property
    def manager(self) -> ModelManager:
        return self.frontend.manager

    def stop(self, grace_seconds: float = 1.0) -> None:
        self.manager.stop()
        self._stop_extras()
        self._grpc_server.stop(grace_seconds)
        self.frontend.close()
        log.info("server on port %s stopped", self.port)


def _initial_config(options: ServerOptions) -> model_server_config_pb2.ModelServerConfig:
    if options.model_config_file:
        return config_files.read_model_server_config(options.model_config_file)
    server_config = config_files.single_model_config(options.model_name, options.model_base_path)
    if options.prediction_log_file_prefix:
        logging_config = logging_config_pb2.LoggingConfig()
        logging_config.log_collector_config.type = "tfrecord"
        logging_config.log_collector_config.filename_prefix = options.prediction_log_file_prefix
        logging_config.sampling_config.sampling_rate = options.prediction_log_sampling_rate
        server_config.model_config_list.config[0].logging_config.CopyFrom(logging_config)
    return server_config


def _make_batcher(options: ServerOptions) -> BatchingRunner | None:
    if not options.enable_batching:
        return None
    batching = config_files.read_batching_options(options.batching_parameters_file,
                                                  os.cpu_count() or 1)
    log.info("batching on: %s", batching)
    return BatchingRunner(batching)


def start(options: ServerOptions) -> ServerHandle:
    """Loads every configured model, then opens the ports; StartupError if that fails."""
    metrics = ServerMetrics()
    manager = ModelManager(
        max_num_load_retries=options.max_num_load_retries,
        load_retry_interval_micros=options.load_retry_interval_micros,
        allow_version_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        warmup=lambda servable: service.warmup(servable))
    try:
        batcher = _make_batcher(options)
    except config_files.ConfigFileError as err:
        raise StartupError(str(err)) from None
    service = InferenceService(manager, batcher or direct_runner,
                               options.enable_signature_method_name_check)
    frontend = Frontend(options, manager, service, metrics)

    def stop_extras() -> None:
        if batcher is not None:
            batcher.stop()

    try:
        frontend.apply_config(_initial_config(options), startup=True)
    except (RequestError, config_files.ConfigFileError, StartupError) as err:
        manager.stop()
        stop_extras()
        raise StartupError(getattr(err, "message", str(err))) from None

    grpc_server, rest_port, stop_rest = None, None, None
    try:
        grpc_server = GrpcServer(frontend, options)
        if options.rest_api_port:
            rest_port, stop_rest = rest_api.start(frontend, options)
    except (StartupError, config_files.ConfigFileError, OSError) as err:
        if grpc_server is not None:
            grpc_server.stop(grace_seconds=0)
        manager.stop()
        stop_extras()
        raise StartupError(str(err)) from None
    port = grpc_server.port
    log.info("serving gRPC on %s:%d%s", options.grpc_bind_address, port,
             f", REST on port {rest_port}" if rest_port else "")

    manager.start_polling(options.file_system_poll_wait_seconds)
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        _poll_config_file(frontend, options)

    def stop_everything() -> None:
        if stop_rest is not None:
            stop_rest()
        stop_extras()

    return ServerHandle(port, rest_port, frontend, grpc_server, stop_everything)


def _poll_config_file(frontend: Frontend, options: ServerOptions) -> None:
    path = Path(options.model_config_file)
    last = {"text": path.read_text()}

    def reread() -> None:
        text = path.read_text()
        if text == last["text"]:
            return
        last["text"] = text
        log.info("model config file %s changed: applying it", path)
        try:
            frontend.apply_config(config_files.read_model_server_config(str(path)))
        except (RequestError, config_files.ConfigFileError) as err:
            log.error("new model config %s rejected, keeping the old one: %s", path,
                      getattr(err, "message", err))

    frontend.manager.run_every(options.model_config_file_poll_wait_seconds, reread,
                               "config-poller")


def serve(options: ServerOptions) -> None:
    """Runs until SIGINT/SIGTERM (the CLI entry point)."""
    handle = start(options)
    # The handler only records the signal: a lock taken in a handler (Event.set) can deadlock
    # with the same lock held by the main thread it interrupts, and the stop never comes.
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, _frame: received.append(signum))
    print(f"Serving on {options.grpc_bind_address}:{handle.port}"
          + (f" (REST on port {handle.rest_port})" if handle.rest_port else ""), flush=True)
    while not received:
        time.sleep(_SIGNAL_POLL_SECONDS)
    handle.stop()
