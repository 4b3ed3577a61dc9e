"""TF Serving's REST API (aiohttp) and its Prometheus endpoint, on --rest_api_port.

JSON requests are turned into the gRPC request protos (serving/server/json_tensor.py) and run
through the same `InferenceService`, so both front ends share every check and error message.
Strings travel as JSON strings or, for bytes (our serialized tf.Examples), as `{"b64": "..."}`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from concurrent import futures
from typing import Any, Callable, Coroutine, TypeVar

import grpc
from aiohttp import web
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from ctpipe.serving.server import config_files, json_tensor
from ctpipe.serving.server.errors import RequestError, invalid
from ctpipe.serving.server.flags import ServerOptions
from ctpipe.serving.server.frontend import Frontend
from ctpipe.serving.server.servable import DEFAULT_SIGNATURE

log = logging.getLogger(__name__)
T = TypeVar("T")

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                   r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
                   r"(?:(?P<metadata>/metadata)|:(?P<method>predict|classify|regress))?$")


def _error(err: RequestError) -> web.Response:
    return web.json_response({"error": err.message}, status=err.http_status)


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"] is not None:
        version = int(match["version"])
        if not -2**63 <= version < 2**63:
            raise invalid(f"Failed to convert version: {match['version']} to numeric.")
        spec.version.value = version
    elif match["label"] is not None:
        spec.version_label = match["label"]
    return spec


# ---- handlers -----------------------------------------------------------------------------
class RestApi:
    def __init__(self, frontend: Frontend, options: ServerOptions, executor: futures.Executor):
        self.frontend = frontend
        self.timeout = options.rest_api_timeout_in_ms / 1000
        self.executor = executor

    async def _blocking(self, function, *args):
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.executor, function, *args),
                                          self.timeout)
        except asyncio.TimeoutError:
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    async def get(self, request: web.Request) -> web.Response:
        match = _PATH.match(request.path)
        if match is None or match["method"]:
            return _error(invalid(f"Malformed request: GET {request.path}"))
        try:
            spec = _model_spec(match)
            if match["metadata"]:
                metadata = get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=["signature_def"])
                response = await self._blocking(self.frontend.service.metadata, metadata)
                signature_map = get_model_metadata_pb2.SignatureDefMap()
                response.metadata["signature_def"].Unpack(signature_map)
                return web.json_response({
                    "model_spec": json_format.MessageToDict(response.model_spec,
                                                            preserving_proto_field_name=True),
                    "metadata": {"signature_def": json_format.MessageToDict(
                        signature_map, preserving_proto_field_name=True)}})
            status = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
            response = await self._blocking(self.frontend.status, status)
            return web.json_response(json_format.MessageToDict(
                response, preserving_proto_field_name=True, including_default_value_fields=True))
        except RequestError as err:
            return _error(err)

    async def post(self, request: web.Request) -> web.Response:
        match = _PATH.match(request.path)
        if match is None or not match["method"]:
            return _error(invalid(f"Malformed request: POST {request.path}"))
        try:
            try:
                body = json.loads(await request.read())
            except ValueError as err:  # UnicodeDecodeError included
                raise invalid(f"JSON Parse error: {err}") from None
            except RecursionError:
                raise invalid("JSON Parse error: the document is nested too deeply") from None
            if not isinstance(body, dict):
                raise invalid("JSON Parse error: the request body must be a JSON object")
            return web.json_response(await self._blocking(self._infer, match, body))
        except RequestError as err:
            return _error(err)
        except Exception as err:  # noqa: BLE001 - malformed JSON must never take the server down
            log.exception("REST %s failed unexpectedly", request.path)
            return _error(RequestError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"))

    def _infer(self, match: re.Match, body: dict) -> dict:
        spec = _model_spec(match)
        spec.signature_name = json_tensor.signature_name(body)
        method, service, frontend = match["method"], self.frontend.service, self.frontend
        deadline = time.monotonic() + self.timeout
        if method == "predict":
            def predict(request: predict_pb2.PredictRequest, deadline: float):
                # The JSON needs the signature's dtypes: resolve inside the counted call, then
                # fill the (logged) request proto in place.
                servable = frontend.manager.resolve(spec)
                signature_name = spec.signature_name or DEFAULT_SIGNATURE
                signature = servable.signatures.get(signature_name)
                if signature is None:
                    raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                                       f'Serving signature key "{signature_name}" not found.')
                request.CopyFrom(json_tensor.predict_request(body, spec, signature))
                return servable, service.predict_on(servable, request, deadline)

            response = frontend.call("Predict", "REST", spec.name, predict,
                                     predict_pb2.PredictRequest(), deadline)
            return json_tensor.predict_json(response, "instances" in body)
        if method == "classify":
            proto = json_tensor.examples_request(body, spec, classification_pb2.ClassificationRequest)
            response = frontend.call("Classify", "REST", spec.name, service.classify, proto,
                                     deadline)
            return {"result": [[[c.label, c.score] for c in row.classes]
                               for row in response.result.classifications]}
        proto = json_tensor.examples_request(body, spec, regression_pb2.RegressionRequest)
        response = frontend.call("Regress", "REST", spec.name, service.regress, proto, deadline)
        return {"result": [r.value for r in response.result.regressions]}

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self._blocking(self.frontend.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _prometheus_path(options: ServerOptions) -> str | None:
    if not options.monitoring_config_file:
        return None
    monitoring = config_files.parse_text_proto(options.monitoring_config_file,
                                               config_files.MonitoringConfig)
    if not monitoring.prometheus_config.enable:
        return None
    return monitoring.prometheus_config.path or config_files.DEFAULT_PROMETHEUS_PATH


class _LoopThread:
    """aiohttp serves from an asyncio loop; the server's callers are synchronous, so the loop
    runs on its own daemon thread and is driven with `run(coroutine)`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rest", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def start(frontend: Frontend, options: ServerOptions) -> tuple[int, Callable[[], None]]:
    """Starts the REST server on its own event-loop thread; returns (port, stop)."""
    executor = futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads,
                                          thread_name_prefix="rest")
    api = RestApi(frontend, options, executor)
    app = web.Application(client_max_size=2**31 - 1)
    app.router.add_route("GET", "/v1/models/{tail:.*}", api.get)
    app.router.add_route("POST", "/v1/models/{tail:.*}", api.post)
    metrics_path = _prometheus_path(options)
    if metrics_path:
        app.router.add_route("GET", metrics_path, api.metrics)
    runner = web.AppRunner(app, access_log=None)
    loop_thread = _LoopThread()

    async def open_site() -> int:
        await runner.setup()
        port = 0 if options.rest_api_port < 0 else options.rest_api_port
        await web.TCPSite(runner, options.grpc_bind_address, port).start()
        return runner.addresses[0][1]

    try:
        port = loop_thread.run(open_site(), timeout=30)
    except OSError:
        loop_thread.stop()
        executor.shutdown(wait=False)
        raise
    log.info("REST on port %d%s", port, f", Prometheus metrics at {metrics_path}" if metrics_path
             else "")

    def stop() -> None:
        loop_thread.run(runner.cleanup(), timeout=10)
        loop_thread.stop()
        executor.shutdown(wait=False)

    return port, stop
