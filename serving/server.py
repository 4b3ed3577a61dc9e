"""`ctpipe serve`: a model server that keeps TensorFlow Serving's gRPC/REST contract.

Python API (tests, benchmarks, embedding)::

    from serving import server
    from serving.options import ServerOptions, parse_flags

    handle = server.start(ServerOptions(port=0, model_name="big_tipper",
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

import asyncio
import dataclasses
import functools
import logging
import os
import threading
import time
from concurrent import futures
from typing import Callable

import grpc
from tensorflow_serving.apis import (get_model_status_pb2, model_management_pb2,
                                     model_service_pb2_grpc, prediction_service_pb2_grpc)
from tensorflow_serving.config import logging_config_pb2, model_server_config_pb2

from serving import config as config_files
from serving.errors import ServingError, invalid
from serving.inference import InferenceService, deadline_left, direct_runner
from serving.metrics import ServerMetrics
from serving.models import ModelManager, StartupError
from serving.options import ServerOptions
from serving.prediction_log import PredictionLogger

log = logging.getLogger(__name__)

_GRPC_OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1),
                 ("grpc.max_send_message_length", 2**31 - 1),
                 ("grpc.so_reuseport", 0)]


class Frontend:
    """What both front ends share: inference, metrics, prediction logs and reloads."""

    def __init__(self, options: ServerOptions, manager: ModelManager, service: InferenceService,
                 metrics: ServerMetrics):
        self.options, self.manager, self.service, self.metrics = options, manager, service, metrics
        self.loggers: dict[str, PredictionLogger] = {}
        self._reload_lock = threading.Lock()

    def call(self, api: str, entrypoint: str, model_name: str, method: Callable, request,
             deadline: float | None):
        """Runs one inference call; records metrics and the sampled prediction log."""
        started = time.perf_counter()
        try:
            servable, response = method(request, deadline)
        except Exception as err:  # noqa: BLE001 - recorded, then re-raised as a ServingError
            raise self.failed(api, entrypoint, model_name, started, err) from None
        self.succeeded(api, entrypoint, servable, started, request, response)
        return response

    def failed(self, api: str, entrypoint: str, model_name: str, started: float,
               err: Exception) -> ServingError:
        """Counts a failed call; anything but a ServingError is a bug reported as INTERNAL
        (a bad request must never take the server down)."""
        if not isinstance(err, ServingError):
            log.error("%s failed unexpectedly", api, exc_info=err)
            err = ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
        self.metrics.observe_request(model_name, api, entrypoint, err.code.name,
                                     time.perf_counter() - started)
        return err

    def succeeded(self, api: str, entrypoint: str, servable, started: float, request,
                  response) -> None:
        self.metrics.observe_request(servable.model_name, api, entrypoint, "OK",
                                     time.perf_counter() - started)
        logger = self.loggers.get(servable.model_name)
        if logger is not None:
            logger.maybe_log(api, request, response, servable.model_name, servable.version,
                             _signature_of(response))

    def status(self, request: get_model_status_pb2.GetModelStatusRequest
               ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        if not spec.name:
            raise invalid("ModelSpec has no name specified.")
        version = None
        if spec.WhichOneof("version_choice") == "version":
            version = spec.version.value
        elif spec.WhichOneof("version_choice") == "version_label":
            version = self.manager.resolve(spec).version
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.extend(self.manager.status(spec.name, version))
        return response

    def apply_config(self, server_config: model_server_config_pb2.ModelServerConfig,
                     startup: bool = False) -> None:
        with self._reload_lock:
            self.manager.apply_config(server_config, startup=startup)
            self._refresh_loggers(server_config)

    def _refresh_loggers(self, server_config) -> None:
        wanted = {c.name: c.logging_config for c in server_config.model_config_list.config
                  if c.HasField("logging_config")}
        for name in list(self.loggers):
            logger = self.loggers[name]
            config = wanted.get(name)
            if (config is None or logger.prefix != config.log_collector_config.filename_prefix
                    or logger.sampling_rate != config.sampling_config.sampling_rate):
                self.loggers.pop(name).close()
        for name, config in wanted.items():
            if name not in self.loggers:
                try:
                    self.loggers[name] = PredictionLogger(
                        config, max_bytes=self.options.prediction_log_file_max_bytes,
                        max_files=self.options.prediction_log_max_files)
                except ValueError as err:
                    raise invalid(f"logging_config of model {name}: {err}") from None
                log.info("prediction log of %s: %s-*.tfrecord, sampling rate %s", name,
                         self.loggers[name].prefix, self.loggers[name].sampling_rate)

    def reload(self, request: model_management_pb2.ReloadConfigRequest):
        self.apply_config(request.config)
        return model_management_pb2.ReloadConfigResponse()

    def close(self) -> None:
        for logger in self.loggers.values():
            logger.close()


def _signature_of(response) -> str:
    spec = getattr(response, "model_spec", None)
    if spec is None:  # MultiInference: one spec per result
        return ",".join(r.model_spec.signature_name for r in response.results)
    return spec.signature_name


def _settle(future: asyncio.Future, task) -> None:
    if future.done():  # the caller gave up (deadline)
        return
    if task.error is not None:
        future.set_exception(task.error)
    else:
        future.set_result(task.outputs)


def _model_name_of(request) -> str:
    if hasattr(request, "tasks"):
        return request.tasks[0].model_spec.name if request.tasks else ""
    return request.model_spec.name


def _deadline(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """grpc.aio servicer. Without batching the model runs inline on the event loop: no thread
    hand-off, the lowest batch-1 latency (TF uses both cores inside a run). With batching, a
    Predict is checked on the loop and awaits its batch (run by the batch threads) without
    occupying a thread; other calls go to a thread pool."""

    def __init__(self, frontend: Frontend, executor: futures.Executor, batcher):
        self._frontend, self._executor, self._batcher = frontend, executor, batcher
        service = frontend.service
        self._methods = {"Predict": service.predict, "Classify": service.classify,
                         "Regress": service.regress, "MultiInference": service.multi_inference}

    async def _inference(self, api: str, request, context):
        call = functools.partial(self._frontend.call, api, "GRPC", _model_name_of(request),
                                 self._methods[api], request, _deadline(context))
        try:
            if self._batcher is None:
                return call()
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except ServingError as err:
            await context.abort(err.code, err.message)

    async def _batched_predict(self, request, context):
        frontend, service = self._frontend, self._frontend.service
        started, deadline = time.perf_counter(), _deadline(context)
        try:
            try:
                prepared = service.prepare_predict(request)
                loop = asyncio.get_running_loop()
                batch_done = loop.create_future()
                self._batcher.submit(prepared.servable, prepared.signature, prepared.inputs,
                                     lambda task: loop.call_soon_threadsafe(_settle, batch_done, task))
                try:
                    outputs = await asyncio.wait_for(batch_done, deadline_left(deadline))
                except asyncio.TimeoutError:
                    raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                       "Deadline Exceeded") from None
                response = service.predict_response(prepared, request, outputs)
            except Exception as err:  # noqa: BLE001 - recorded and answered
                raise frontend.failed("Predict", "GRPC", request.model_spec.name, started,
                                      err) from None
        except ServingError as err:
            await context.abort(err.code, err.message)
        frontend.succeeded("Predict", "GRPC", prepared.servable, started, request, response)
        return response

    async def Predict(self, request, context):
        if self._batcher is not None:
            return await self._batched_predict(request, context)
        return await self._inference("Predict", request, context)

    async def Classify(self, request, context):
        return await self._inference("Classify", request, context)

    async def Regress(self, request, context):
        return await self._inference("Regress", request, context)

    async def MultiInference(self, request, context):
        return await self._inference("MultiInference", request, context)

    async def GetModelMetadata(self, request, context):
        try:
            return self._frontend.service.metadata(request)
        except ServingError as err:
            await context.abort(err.code, err.message)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, frontend: Frontend, executor: futures.Executor):
        self._frontend, self._executor = frontend, executor

    async def GetModelStatus(self, request, context):
        try:
            return self._frontend.status(request)
        except ServingError as err:
            await context.abort(err.code, err.message)

    async def HandleReloadConfigRequest(self, request, context):
        try:  # loads models: may take long, so off the event loop
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._frontend.reload, request)
        except ServingError as err:
            await context.abort(err.code, err.message)


class _GrpcServer:
    """A grpc.aio server on its own event-loop thread."""

    def __init__(self, frontend: Frontend, options: ServerOptions, batcher):
        self._executor = futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads,
                                                    thread_name_prefix="grpc")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc", daemon=True)
        self._thread.start()

        async def create() -> tuple[grpc.aio.Server, int]:
            grpc_server = grpc.aio.server(options=_GRPC_OPTIONS)
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                _PredictionService(frontend, self._executor, batcher), 
                grpc_server)
            model_service_pb2_grpc.add_ModelServiceServicer_to_server(
                _ModelService(frontend, self._executor), grpc_server)
            port = _bind(grpc_server, options)
            await grpc_server.start()
            return grpc_server, port

        try:
            self._server, self.port = self._run(create())
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise

    def _run(self, coroutine, timeout: float | None = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self, grace_seconds: float) -> None:
        self._run(self._server.stop(grace_seconds))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._executor.shutdown(wait=False)


@dataclasses.dataclass
class ServerHandle:
    """A running server: `.port`, `.rest_port`, `.manager`, `.stop()`."""

    port: int
    rest_port: int | None
    frontend: Frontend
    _grpc_server: _GrpcServer
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


def _bind(grpc_server: grpc.aio.Server, options: ServerOptions) -> int:
    address = f"{options.grpc_bind_address}:{options.port}"
    if options.ssl_config_file:
        ssl = config_files.parse_text_proto(options.ssl_config_file, config_files.SSLConfig)
        if not ssl.server_key or not ssl.server_cert:
            raise StartupError(f"{options.ssl_config_file}: server_key and server_cert are required")
        credentials = grpc.ssl_server_credentials(
            [(ssl.server_key.encode(), ssl.server_cert.encode())],
            root_certificates=ssl.custom_ca.encode() or None,
            require_client_auth=ssl.client_verify)
        port = grpc_server.add_secure_port(address, credentials)
    else:
        port = grpc_server.add_insecure_port(address)
    if not port:
        raise StartupError(f"cannot bind gRPC to {address}")
    return port


def _make_batcher(options: ServerOptions):
    if not options.enable_batching:
        return None
    from serving.batching import BatchingRunner

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

    def stop_extras():
        if batcher is not None:
            batcher.stop()

    try:
        frontend.apply_config(_initial_config(options), startup=True)
    except (ServingError, config_files.ConfigFileError, StartupError) as err:
        manager.stop()
        stop_extras()
        raise StartupError(getattr(err, "message", str(err))) from None

    try:
        grpc_server = _GrpcServer(frontend, options, batcher)
        rest_port, stop_rest = None, None
        if options.rest_api_port:
            from serving import rest

            rest_port, stop_rest = rest.start(frontend, options)
    except (StartupError, config_files.ConfigFileError, OSError) as err:
        manager.stop()
        stop_extras()
        raise StartupError(str(err)) from None
    port = grpc_server.port
    log.info("serving gRPC on %s:%d%s", options.grpc_bind_address, port,
             f", REST on port {rest_port}" if rest_port else "")

    manager.start_polling(options.file_system_poll_wait_seconds)
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        _poll_config_file(frontend, options)

    def stop_everything():
        if stop_rest is not None:
            stop_rest()
        stop_extras()

    return ServerHandle(port, rest_port, frontend, grpc_server, stop_everything)


def _poll_config_file(frontend: Frontend, options: ServerOptions) -> None:
    path = options.model_config_file
    last = {"text": open(path).read()}

    def reread():
        text = open(path).read()
        if text == last["text"]:
            return
        last["text"] = text
        log.info("model config file %s changed: applying it", path)
        try:
            frontend.apply_config(config_files.read_model_server_config(path))
        except (ServingError, config_files.ConfigFileError) as err:
            log.error("new model config %s rejected, keeping the old one: %s", path,
                      getattr(err, "message", err))

    frontend.manager.run_every(options.model_config_file_poll_wait_seconds, reread,
                               "config-poller")


def serve(options: ServerOptions) -> None:
    """Runs until SIGINT/SIGTERM (the CLI entry point)."""
    import signal

    handle = start(options)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"Serving on {options.grpc_bind_address}:{handle.port}"
          + (f" (REST on port {handle.rest_port})" if handle.rest_port else ""), flush=True)
    stopped.wait()
    handle.stop()
