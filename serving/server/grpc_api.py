"""TF Serving's gRPC API (PredictionService and ModelService) on a thread-pool gRPC server.

Each call runs on one of `--grpc_max_threads` threads from start to end, the model run
included: there is no hand-off between threads on the request path (the lowest batch-1
latency), GetModelStatus and GetModelMetadata answer while long requests run on other threads,
and TensorFlow releases the interpreter lock while it computes. With batching, a Predict
waits on its thread for the batch, which the batch threads run.

The handlers receive the raw request body and parse it themselves, so a body that is not a
valid proto is answered INVALID_ARGUMENT naming the expected message (grpc's own deserializer
would end the call UNKNOWN and log a traceback).
"""
from __future__ import annotations

import functools
import time
from concurrent import futures
from typing import Any, Callable

import grpc
from google.protobuf.message import DecodeError, Message
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)

from ctpipe.serving.server import config_files
from ctpipe.serving.server.errors import RequestError, StartupError
from ctpipe.serving.server.flags import ServerOptions
from ctpipe.serving.server.frontend import Frontend

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

Handler = Callable[[Any, grpc.ServicerContext], Any]


def _model_name_of(request: Any) -> str:
    if isinstance(request, inference_pb2.MultiInferenceRequest):
        return request.tasks[0].model_spec.name if request.tasks else ""
    return request.model_spec.name


def _deadline(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class _Handlers:
    """One function per gRPC method; each answers a RequestError with its code and message."""

    def __init__(self, frontend: Frontend):
        self._frontend = frontend
        service = frontend.service
        self._inference = {"Predict": service.predict, "Classify": service.classify,
                           "Regress": service.regress, "MultiInference": service.multi_inference}

    def method_handlers(self, methods: dict[str, tuple[type[Message], type[Message]]]
                        ) -> dict[str, grpc.RpcMethodHandler]:
        return {name: grpc.unary_unary_rpc_method_handler(
                    functools.partial(self._parse_then, self._handler_for(name), request_class),
                    response_serializer=response_class.SerializeToString)
                for name, (request_class, response_class) in methods.items()}

    def _handler_for(self, name: str) -> Handler:
        if name in self._inference:
            return functools.partial(self._run_inference, name)
        return {"GetModelMetadata": self._metadata, "GetModelStatus": self._status,
                "HandleReloadConfigRequest": self._reload}[name]

    @staticmethod
    def _parse_then(handler: Handler, request_class: type[Message], body: bytes,
                    context: grpc.ServicerContext) -> Any:
        try:
            request = request_class.FromString(body)
        except DecodeError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Could not parse the request body as "
                          f"{request_class.DESCRIPTOR.full_name}: {err}")
        try:
            return handler(request, context)
        except RequestError as err:
            context.abort(err.code, err.message)

    def _run_inference(self, api: str, request: Any, context: grpc.ServicerContext) -> Any:
        return self._frontend.call(api, "GRPC", _model_name_of(request), self._inference[api],
                                   request, _deadline(context))

    def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                  context: grpc.ServicerContext
                  ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return self._frontend.service.metadata(request)

    def _status(self, request: get_model_status_pb2.GetModelStatusRequest,
                context: grpc.ServicerContext) -> get_model_status_pb2.GetModelStatusResponse:
        return self._frontend.status(request)

    def _reload(self, request: model_management_pb2.ReloadConfigRequest,
                context: grpc.ServicerContext) -> model_management_pb2.ReloadConfigResponse:
        return self._frontend.reload(request)


def _bind(grpc_server: grpc.Server, options: ServerOptions) -> int:
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
    """The gRPC front end: a gRPC server with `grpc_max_threads` threads; `.port` is bound."""

    def __init__(self, frontend: Frontend, options: ServerOptions):
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads,
                                       thread_name_prefix="grpc"), options=_OPTIONS)
        handlers = _Handlers(frontend)
        self._server.add_registered_method_handlers(
            PREDICTION_SERVICE, handlers.method_handlers(PREDICTION_METHODS))
        self._server.add_registered_method_handlers(
            MODEL_SERVICE, handlers.method_handlers(MODEL_METHODS))
        self.port = _bind(self._server, options)
        self._server.start()

    def stop(self, grace_seconds: float) -> None:
        """Refuses new calls, lets calls in flight finish within `grace_seconds`."""
        self._server.stop(grace_seconds).wait()
