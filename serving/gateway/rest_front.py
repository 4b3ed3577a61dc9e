"""The gateway's REST front: TF Serving's REST API on aiohttp, forwarded to the backend's REST
port, and the gateway's Prometheus metrics.

A default-path call (`POST /v1/models/M:predict`, `GET /v1/models/M/metadata`) is sent to
`/v1/models/M/labels/<label>...`; every other path passes through unchanged. Status and body
of the backend's answer are returned as they are. Predict calls whose body is our model's
(serialized tf.Examples under `instances`/`inputs`, as `{"b64": ...}`) are also turned into
PredictRequest/PredictResponse protos for the prediction metrics and log: REST answers carry
no version, so it is the label's version in the model config.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ctpipe.common import features
from ctpipe.common.policies import SHADOW
from ctpipe.serving.client import protos
from ctpipe.serving.client.grpc_client import DEFAULT_SIGNATURE
from ctpipe.serving.gateway.forwarding import (
    BackendError,
    Forwarder,
    Send,
    request_id_or_new,
    undecoded,
)
from ctpipe.serving.gateway.routing import ROUTE_KEY
from ctpipe.serving.prediction_log import REQUEST_ID
from ctpipe.serving.server.errors import HTTP_STATUS

ENTRYPOINT = "REST"
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                   r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
                   r"(?P<rest>/metadata|:(?P<method>predict|classify|regress))?$")
_CODES = {status: code for code, status in HTTP_STATUS.items() if code not in (
    grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE)}
_API = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


class HttpAnswer(BackendError):
    """An error answer of the backend's REST API, returned to the caller as it came."""

    def __init__(self, status: int, body: bytes, content_type: str):
        message = body.decode(errors="replace")
        super().__init__(_CODES.get(status, grpc.StatusCode.UNKNOWN), message)
        self.status, self.body, self.content_type = status, body, content_type


def _gateway_error(status: int, message: str) -> HttpAnswer:
    """An error answer made by the gateway itself, in TF Serving's JSON form."""
    return HttpAnswer(status, json.dumps({"error": message}).encode(), "application/json")


def _examples_of(body: dict) -> list[bytes] | None:
    """The serialized examples of a predict body in our model's form, else None."""
    rows = body.get("instances", body.get("inputs"))
    if isinstance(rows, dict) and list(rows) == [features.EXAMPLES_KEY]:
        rows = rows[features.EXAMPLES_KEY]
    if not isinstance(rows, list):
        return None
    examples = []
    for row in rows:
        if isinstance(row, dict) and list(row) == [features.EXAMPLES_KEY]:
            row = row[features.EXAMPLES_KEY]
        if not (isinstance(row, dict) and isinstance(row.get("b64"), str)):
            return None
        examples.append(base64.b64decode(row["b64"]))
    return examples


def predict_protos(model: str, version: int, body: dict, answer: dict) -> tuple[Any, Any] | None:
    """A REST predict in our model's form as PredictRequest/PredictResponse (else None)."""
    examples = _examples_of(body)
    values = answer.get("predictions", answer.get("outputs"))
    if examples is None or not isinstance(values, list) or len(values) != len(examples):
        return None
    if not all(isinstance(v, (int, float)) for v in values):
        return None
    signature = body.get("signature_name") or DEFAULT_SIGNATURE
    request, response = protos.PredictRequest(), protos.PredictResponse()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    tensor = request.inputs[features.EXAMPLES_KEY]
    tensor.dtype = protos.DT_STRING
    tensor.tensor_shape.dim.add().size = len(examples)
    tensor.string_val.extend(examples)
    response.model_spec.name, response.model_spec.signature_name = model, signature
    response.model_spec.version.value = version
    response.outputs[features.PREDICTION_KEY].float_val.extend(values)
    return request, response


class RestFront:
    """aiohttp handlers; `app()` builds the application."""

    def __init__(self, forwarder: Forwarder, backend_rest: str, metrics_path: str | None,
                 timeout: float):
        self.forwarder, self.metrics = forwarder, forwarder.metrics
        self.backend = f"http://{backend_rest}"
        self.metrics_path = metrics_path
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2**31 - 1)
        if self.metrics_path:
            app.router.add_get(self.metrics_path, self.exposition)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        self.session = aiohttp.ClientSession(timeout=self.timeout, auto_decompress=False)

    async def _close(self, _: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def exposition(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _send(self, method: str, path: str, query: str, body: bytes,
                    content_type: str | None) -> bytes:
        url = self.backend + path + (f"?{query}" if query else "")
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            async with self.session.request(method, url, data=body, headers=headers) as answer:
                data = await answer.read()
        except aiohttp.ClientError as err:  # the backend is down or restarting
            raise _gateway_error(503, f"ctpipe gateway: backend {self.backend} unreachable: "
                                      f"{err}") from None
        except asyncio.TimeoutError:
            raise _gateway_error(504, "Deadline Exceeded") from None
        if answer.status != 200:
            raise HttpAnswer(answer.status, data, answer.content_type)
        return data

    async def handle(self, request: web.Request) -> web.Response:
        """Every inference answer, errors included, carries the request id (the caller's
        `x-request-id` header, or one assigned here) in the same header."""
        request_id = request_id_or_new(request.headers.get(REQUEST_ID))
        response = await self._handle(request, request_id)
        response.headers[REQUEST_ID] = request_id
        return response

    async def _handle(self, request: web.Request, request_id: str) -> web.Response:
        body = await request.read()
        match = _PATH.match(request.path)
        routed = (match is not None and match["version"] is None and match["label"] is None
                  and (request.method == "POST" and match["method"]
                       or request.method == "GET" and match["rest"] == "/metadata"))
        model = match["name"] if match else ""
        api = _API.get(match["method"] or "", "GetModelMetadata") if match else ""
        suffix = (match["rest"] or "") if match else ""

        async def send(label: str | None) -> bytes:
            path = request.path if label is None else f"/v1/models/{model}/labels/{label}{suffix}"
            return await self._send(request.method, path, request.query_string, body,
                                    request.headers.get("Content-Type"))

        started = time.perf_counter()
        if match is None or not match["rest"]:
            try:  # status and anything else: not an inference call
                return web.Response(body=await send(None), content_type="application/json")
            except HttpAnswer as err:
                return web.Response(status=err.status, body=err.body,
                                    content_type=err.content_type)
        try:
            answer = await self.forwarder.forward(model, not routed,
                                                  request.headers.get(ROUTE_KEY) or request_id,
                                                  send, undecoded)
        except HttpAnswer as err:
            self.metrics.observe_request(model, api, ENTRYPOINT, err.code.name,
                                         time.perf_counter() - started)
            return web.Response(status=err.status, body=err.body, content_type=err.content_type)
        except BackendError as err:  # the gateway's own refusal
            self.metrics.observe_request(model, api, ENTRYPOINT, err.code.name,
                                         time.perf_counter() - started)
            return web.json_response({"error": err.message}, status=HTTP_STATUS[err.code])
        self.metrics.observe_request(model, api, ENTRYPOINT, "OK", time.perf_counter() - started)
        if api == "Predict":
            self._record(model, match, body, answer.body, answer.version, answer.shadow, send,
                         request_id)
        return web.Response(body=answer.body, content_type="application/json")

    def _record(self, model: str, match: re.Match, body: bytes, answer: bytes,
                version: int | None, shadow: bool, send: Send, request_id: str) -> None:
        """Metrics and log of a predict in our model's form; the shadow copy of one."""
        if match["version"] is not None:
            version = int(match["version"])
        elif match["label"] is not None:
            version = self.forwarder.router.version(model, match["label"])
        try:
            request_json = json.loads(body)
        except ValueError:
            return
        sampled = self.forwarder.sampled_logger(model, request_id)

        def record(version: int | None, answer: bytes) -> None:
            converted = predict_protos(model, version, request_json, json.loads(answer)) if (
                version is not None and isinstance(request_json, dict)) else None
            if converted is not None:
                self.forwarder.record(sampled, model, version, *converted, request_id)

        record(version, answer)
        if shadow:
            shadow_version = self.forwarder.router.version(model, SHADOW)
            self.forwarder.mirror(model, send, lambda data: record(shadow_version, data))
