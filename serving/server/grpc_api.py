"""TF Serving's gRPC API (PredictionService and ModelService) on grpc.aio.

The handlers receive the raw request body and parse it themselves, so a body that is not a
valid proto is answered INVALID_ARGUMENT naming the expected message (grpc's own deserializer
would end the call UNKNOWN and log a traceback).

Model runs (Predict, Classify, Regress, MultiInference) happen on a thread pool, off the event
loop: GetModelStatus and GetModelMetadata answer while a long request runs, and TensorFlow
releases the interpreter lock while it computes, so the loop keeps reading and writing calls.
With batching, a Predict is checked on the loop and awaits its batch (run by the batch threads)
without holding a pool thread. Config reloads load models: they use the pool too.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent import futures
from typing import Any, Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError, Message
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, inference_pb2, model_management_pb2,
                                     predict_pb2, regression_pb2)

from serving.server import config_files
from serving.server.batching import BatchingRunner, Task
from serving.server.errors import RequestError, StartupError
from serving.server.flags import ServerOptions
from serving.server.frontend import Frontend
from serving.server.inference import deadline_left
from serving.server.loop_thread import LoopThread

log = logging.getLogger(__name__)

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
# Method -> (request, response) message classes, per service.
PREDICTION_METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "Classify": (classification_pb2.ClassificationRequest,
                 classification_pb2.ClassificationResponse),
    "Regress": (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse),
    "Predict": (predict_pb2.PredictRequest, predict_pb2.PredictResponse),
    "MultiInference": (inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse),
    "GetModelMetadata": (get_model_metadata_pb2.GetModelMetadataRequest,
                         get_model_metadata_pb2.GetModelMetadataResponse),
}
MODEL_METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "GetModelStatus": (get_model_status_pb2.GetModelStatusRequest,
                       get_model_status_pb2.GetModelStatusResponse),
    "HandleReloadConfigRequest": (model_management_pb2.ReloadConfigRequest,
                                  model_management_pb2.ReloadConfigResponse),
}
_OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.max_send_message_length", 2**31 - 1),
            ("grpc.so_reuseport", 0)]

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _settle(future: asyncio.Future, task: Task) -> None:
    if future.done():  # the caller gave up (deadline)
        return
    if task.error is not None:
        future.set_exception(task.error)
    else:
        future.set_result(task.outputs)


def _model_name_of(request: Any) -> str:
    if isinstance(request, inference_pb2.MultiInferenceRequest):
        return request.tasks[0].model_spec.name if request.tasks else ""
    return request.model_spec.name


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class _Handlers:
    """One coroutine per gRPC method; each answers a RequestError with its code and message."""

    def __init__(self, frontend: Frontend, executor: futures.Executor,
                 batcher: BatchingRunner | None):
        self._frontend, self._executor, self._batcher = frontend, executor, batcher
        service = frontend.service
        self._inference = {"Predict": service.predict, "Classify": service.classify,
                           "Regress": service.regress, "MultiInference": service.multi_inference}

    def method_handlers(self, methods: dict[str, tuple[type[Message], type[Message]]]
                        ) -> dict[str, grpc.RpcMethodHandler]:
        handlers = {}
        for name, (request_class, response_class) in methods.items():
            handler = self._handler_for(name)
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                functools.partial(self._parse_then, handler, request_class),
                response_serializer=response_class.SerializeToString)
        return handlers

    def _handler_for(self, name: str) -> Handler:
        if name == "Predict" and self._batcher is not None:
            return self._batched_predict
        if name in self._inference:
            return functools.partial(self._run_inference, name)
        return {"GetModelMetadata": self._metadata, "GetModelStatus": self._status,
                "HandleReloadConfigRequest": self._reload}[name]

    @staticmethod
    async def _parse_then(handler: Handler, request_class: type[Message], body: bytes,
                          context: grpc.aio.ServicerContext) -> Any:
        try:
            request = request_class.FromString(body)
        except DecodeError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Could not parse the request body as "
                                f"{request_class.DESCRIPTOR.full_name}: {err}")
        try:
            return await handler(request, context)
        except RequestError as err:
            await context.abort(err.code, err.message)

    async def _run_inference(self, api: str, request: Any,
                             context: grpc.aio.ServicerContext) -> Any:
        call = functools.partial(self._frontend.call, api, "GRPC", _model_name_of(request),
                                 self._inference[api], request, _deadline(context))
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _batched_predict(self, request: predict_pb2.PredictRequest,
                               context: grpc.aio.ServicerContext) -> predict_pb2.PredictResponse:
        frontend, service = self._frontend, self._frontend.service
        started, deadline = time.perf_counter(), _deadline(context)
        try:
            prepared = service.prepare_predict(request)
            loop = asyncio.get_running_loop()
            batch_done = loop.create_future()
            self._batcher.submit(prepared.servable, prepared.signature, prepared.inputs,
                                 lambda task: loop.call_soon_threadsafe(_settle, batch_done, task))
            try:
                outputs = await asyncio.wait_for(batch_done, deadline_left(deadline))
            except asyncio.TimeoutError:
                raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                   "Deadline Exceeded") from None
            response = service.predict_response(prepared, request, outputs)
        except Exception as err:  # noqa: BLE001 - recorded and answered
            raise frontend.failed("Predict", "GRPC", request.model_spec.name, started,
                                  err) from None
        frontend.succeeded("Predict", "GRPC", prepared.servable, started, request, response)
        return response

    async def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                        context: grpc.aio.ServicerContext
                        ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return self._frontend.service.metadata(request)

    async def _status(self, request: get_model_status_pb2.GetModelStatusRequest,
                      context: grpc.aio.ServicerContext
                      ) -> get_model_status_pb2.GetModelStatusResponse:
        return self._frontend.status(request)

    async def _reload(self, request: model_management_pb2.ReloadConfigRequest,
                      context: grpc.aio.ServicerContext
                      ) -> model_management_pb2.ReloadConfigResponse:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._frontend.reload, request)


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


class GrpcServer:
    """The gRPC front end: a grpc.aio server on its own event-loop thread; `.port` is bound."""

    def __init__(self, frontend: Frontend, options: ServerOptions,
                 batcher: BatchingRunner | None):
        self._executor = futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads,
                                                    thread_name_prefix="grpc")
        self._loop_thread = LoopThread("grpc")
        handlers = _Handlers(frontend, self._executor, batcher)

        async def create() -> tuple[grpc.aio.Server, int]:
            grpc_server = grpc.aio.server(options=_OPTIONS)
            grpc_server.add_registered_method_handlers(
                PREDICTION_SERVICE, handlers.method_handlers(PREDICTION_METHODS))
            grpc_server.add_registered_method_handlers(
                MODEL_SERVICE, handlers.method_handlers(MODEL_METHODS))
            port = _bind(grpc_server, options)
            await grpc_server.start()
            return grpc_server, port

        try:
            self._server, self.port = self._loop_thread.run(create())
        except BaseException:
            self._loop_thread.stop()
            self._executor.shutdown(wait=False)
            raise

    def stop(self, grace_seconds: float) -> None:
        self._loop_thread.run(self._server.stop(grace_seconds))
        self._loop_thread.stop()
        self._executor.shutdown(wait=False)
