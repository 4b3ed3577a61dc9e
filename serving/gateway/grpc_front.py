"""The gateway's gRPC front: TF Serving's PredictionService and ModelService on a grpc.aio
server, forwarded to the backend over one grpc.aio channel.

Handlers take and return raw bytes (no (de)serializers on either side): the body is parsed
once to route it, and the backend's answer is returned as it arrived. A body that does not
parse is forwarded unchanged, so the backend answers it with its own error. Every inference
call returns its request id (the client's `x-request-id`, or one assigned here) in the
trailing metadata, errors included.
"""
from __future__ import annotations

import time
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from ctpipe.serving.client import protos
from ctpipe.serving.client.grpc_client import MODEL_SERVICE, PREDICTION_SERVICE
from ctpipe.serving.gateway.forwarding import BackendError, Forwarder, request_id_or_new, undecoded
from ctpipe.serving.gateway.routing import ROUTE_KEY
from ctpipe.serving.prediction_log import REQUEST_ID

ENTRYPOINT = "GRPC"
# Inference methods and their request classes; every one but the metadata call is mirrored
# to a shadow.
REQUEST_CLASSES: dict[str, type] = {
    "Predict": protos.PredictRequest,
    "Classify": protos.ClassificationRequest,
    "Regress": protos.RegressionRequest,
    "MultiInference": protos.MultiInferenceRequest,
    "GetModelMetadata": protos.GetModelMetadataRequest,
}
MODEL_METHODS = ("GetModelStatus", "HandleReloadConfigRequest")
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1),
                    ("grpc.max_send_message_length", 2**31 - 1)]
# Towards the backend: no retries of our own (the caller's client decides; an UNAVAILABLE
# goes back to it as it came).
_BACKEND_OPTIONS = _CHANNEL_OPTIONS + [("grpc.enable_retries", 0)]


def _specs(method: str, request: Any) -> list[Any]:
    if method == "MultiInference":
        return [task.model_spec for task in request.tasks]
    return [request.model_spec]


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


class GrpcFront:
    """Handlers for both services; `server()` builds the grpc.aio server bound to `address`."""

    def __init__(self, forwarder: Forwarder, backend: str):
        self.forwarder = forwarder
        self.metrics = forwarder.metrics
        self.channel = grpc.aio.insecure_channel(backend, options=_BACKEND_OPTIONS)
        self._backend = {f"{service}/{method}": self.channel.unary_unary(
                             f"/{service}/{method}")
                         for service, methods in ((PREDICTION_SERVICE, REQUEST_CLASSES),
                                                  (MODEL_SERVICE, MODEL_METHODS))
                         for method in methods}

    def server(self, address: str) -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(options=_CHANNEL_OPTIONS)
        for service, methods in ((PREDICTION_SERVICE, REQUEST_CLASSES),
                                 (MODEL_SERVICE, MODEL_METHODS)):
            handlers = {method: grpc.unary_unary_rpc_method_handler(self._handler(service,
                                                                                  method))
                        for method in methods}
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),))
        port = server.add_insecure_port(address)
        if not port:
            raise OSError(f"cannot bind gRPC to {address}")
        return server, port

    def _handler(self, service: str, method: str):
        call = self._backend[f"{service}/{method}"]
        if method in REQUEST_CLASSES:
            async def inference(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
                return await self._inference(method, call, body, context)
            return inference

        async def passing_through(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                answer = await call(body, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as err:
                await context.abort(err.code(), err.details() or "")
            if method == "HandleReloadConfigRequest":
                self.forwarder.router.apply(protos.ReloadConfigRequest.FromString(body).config)
            return answer
        return passing_through

    async def _inference(self, method: str, call: grpc.aio.UnaryUnaryMultiCallable,
                         body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.perf_counter()
        timeout = context.time_remaining()
        request_id = request_id_or_new(_metadata(context, REQUEST_ID))
        returned = ((REQUEST_ID, request_id),)
        context.set_trailing_metadata(returned)
        try:
            request = REQUEST_CLASSES[method].FromString(body)
        except DecodeError:
            request = None
        specs = _specs(method, request) if request is not None else []
        model = specs[0].name if specs else ""
        pinned = not model or any(spec.WhichOneof("version_choice") for spec in specs)

        async def send(label: str | None) -> bytes:
            payload = body
            if label is not None:
                for spec in specs:
                    spec.version_label = label
                payload = request.SerializeToString()
            try:
                return await call(payload, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                raise BackendError(err.code(), err.details() or "") from None

        try:
            answer = await self.forwarder.forward(
                model, pinned, _metadata(context, ROUTE_KEY) or request_id, send,
                _decoder(method))
        except BackendError as err:
            self.metrics.observe_request(model, method, ENTRYPOINT, err.code.name,
                                         time.perf_counter() - started)
            await context.abort(err.code, err.message, trailing_metadata=returned)
        self.metrics.observe_request(model, method, ENTRYPOINT, "OK",
                                     time.perf_counter() - started)
        sampled = self.forwarder.sampled_logger(model, request_id)
        if method == "Predict":
            self.forwarder.record(sampled, model, answer.version, request, answer.parsed,
                                  request_id)
        if answer.shadow and method != "GetModelMetadata":
            decode = _decoder(method)

            def shadow_answered(shadow_body: bytes) -> None:
                if method == "Predict":
                    version, response = decode(shadow_body)
                    self.forwarder.record(sampled, model, version, request, response,
                                          request_id)

            self.forwarder.mirror(model, send, shadow_answered)
        return answer.body


def _decoder(method: str):
    """Predict answers are parsed (version, metrics, log); the others are passed on as they
    are (their version comes from the labels)."""
    if method == "Predict":
        def decode(body: bytes) -> tuple[int | None, Any]:
            response = protos.PredictResponse.FromString(body)
            return response.model_spec.version.value, response
        return decode
    return undecoded
