"""TF Serving's REST API (aiohttp) and its Prometheus endpoint, on --rest_api_port.

JSON requests are turned into the gRPC request protos and run through the same
`InferenceService`, so both front ends share every check and error message. Strings travel as
JSON strings or, for bytes (our serialized tf.Examples), as `{"b64": "..."}`.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
import time
from concurrent import futures
from typing import Any, Callable, Coroutine, TypeVar

import grpc
import numpy as np
from aiohttp import web
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_pb2, predict_pb2, regression_pb2)

from serving.server import config_files
from serving.server.errors import RequestError, invalid
from serving.server.flags import ServerOptions
from serving.server.frontend import Frontend
from serving.server.servable import DEFAULT_SIGNATURE, array_to_tensor, tensor_to_array

log = logging.getLogger(__name__)
T = TypeVar("T")

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                   r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
                   r"(?:(?P<metadata>/metadata)|:(?P<method>predict|classify|regress))?$")
_NUMPY_TYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64,
                types_pb2.DT_INT32: np.int32, types_pb2.DT_INT64: np.int64,
                types_pb2.DT_INT16: np.int16, types_pb2.DT_INT8: np.int8,
                types_pb2.DT_UINT8: np.uint8, types_pb2.DT_BOOL: np.bool_}


def _error(err: RequestError) -> web.Response:
    return web.json_response({"error": err.message}, status=err.http_status)


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"] is not None:
        spec.version.value = int(match["version"])
    elif match["label"] is not None:
        spec.version_label = match["label"]
    return spec


# ---- JSON <-> tensors ---------------------------------------------------------------------
def _decode_strings(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise invalid("JSON object: does not have named input: b64")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError):
            raise invalid("Unable to base64 decode") from None
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"JSON Value: {json.dumps(value)} Type: {type(value).__name__} is not of "
                  f"expected type: string")


def _to_tensor(value: Any, dtype: int, alias: str):
    if dtype == types_pb2.DT_STRING:
        return array_to_tensor(np.array(_decode_strings(value), dtype=object), dtype)
    numpy_type = _NUMPY_TYPES.get(dtype)
    if numpy_type is None:
        raise invalid(f"input {alias}: dtype {types_pb2.DataType.Name(dtype)} is not supported "
                      "over REST")
    try:
        return array_to_tensor(np.asarray(value, dtype=numpy_type), dtype)
    except (ValueError, TypeError):
        raise invalid(f"Failed to process element: {alias} of 'instances' list. JSON Value: "
                      f"{json.dumps(value)[:200]} not formatted correctly for "
                      f"{types_pb2.DataType.Name(dtype)}") from None


def _to_json_value(array: np.ndarray, alias: str) -> Any:
    if array.dtype == object:
        def convert(item):
            if alias.endswith("_bytes"):
                return {"b64": base64.b64encode(item).decode()}
            try:
                return item.decode()
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode()}
        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else []
    return array.tolist()


def _predict_request(body: dict, spec: model_pb2.ModelSpec, signature) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=spec)
    if ("instances" in body) == ("inputs" in body):
        raise invalid("Missing 'inputs' or 'instances' key" if "instances" not in body else
                      "Not formatted correctly: 'instances' and 'inputs' both present")
    aliases = list(signature.inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid("'instances' must be a non-empty list")
        named = isinstance(instances[0], dict) and set(instances[0]) != {"b64"}
        if named:
            columns = {alias: [] for alias in instances[0]}
            for row in instances:
                if not isinstance(row, dict) or set(row) != set(columns):
                    raise invalid("Failed to process element: every instance must have the same "
                                  "named inputs")
                for alias in columns:
                    columns[alias].append(row[alias])
        elif len(aliases) == 1:
            columns = {aliases[0]: instances}
        else:
            raise invalid("instances must be objects naming the signature's inputs "
                          f"{sorted(aliases)}")
    else:
        inputs = body["inputs"]
        named = isinstance(inputs, dict) and set(inputs) != {"b64"}
        if named:
            columns = inputs
        elif len(aliases) == 1:
            columns = {aliases[0]: inputs}
        else:
            raise invalid(f"inputs must be an object naming the signature's inputs {sorted(aliases)}")
    for alias, value in columns.items():
        dtype = signature.inputs[alias].dtype if alias in signature.inputs else types_pb2.DT_STRING
        request.inputs[alias].CopyFrom(_to_tensor(value, dtype, alias))
    request.output_filter.extend(body.get("output_filter", []))
    return request


def _predict_json(response: predict_pb2.PredictResponse, row_format: bool) -> dict:
    outputs = {alias: _to_json_value(tensor_to_array(proto, alias), alias)
               for alias, proto in response.outputs.items()}
    if not row_format:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{alias: values[i] for alias, values in outputs.items()}
                            for i in range(rows)]}


def _feature(value: Any) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if all(isinstance(v, bool) or isinstance(v, int) for v in values):
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, dict)) for v in values):
        feature.bytes_list.value.extend(_decode_strings(values))
    else:
        raise invalid(f"Feature values must be all numbers or all strings: {json.dumps(value)[:200]}")
    return feature


def _example(features: Any) -> example_pb2.Example:
    if not isinstance(features, dict):
        raise invalid("Each example must be a JSON object of feature name to value(s)")
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(value))
    return example


def _examples_request(body: dict, spec: model_pb2.ModelSpec, request_type):
    request = request_type(model_spec=spec)
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise invalid("'examples' must be a list of JSON objects")
    if "context" in body:
        with_context = request.input.example_list_with_context
        with_context.context.CopyFrom(_example(body["context"]))
        with_context.examples.extend(_example(e) for e in examples)
    else:
        request.input.example_list.examples.extend(_example(e) for e in examples)
    return request


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
        spec = _model_spec(match)
        try:
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
            except (ValueError, UnicodeDecodeError) as err:
                raise invalid(f"JSON Parse error: {err}") from None
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
        spec.signature_name = body.get("signature_name", "")
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
                request.CopyFrom(_predict_request(body, spec, signature))
                return servable, service.predict_on(servable, request, deadline)

            response = frontend.call("Predict", "REST", spec.name, predict,
                                     predict_pb2.PredictRequest(), deadline)
            return _predict_json(response, "instances" in body)
        if method == "classify":
            proto = _examples_request(body, spec, classification_pb2.ClassificationRequest)
            response = frontend.call("Classify", "REST", spec.name, service.classify, proto,
                                     deadline)
            return {"result": [[[c.label, c.score] for c in row.classes]
                               for row in response.result.classifications]}
        proto = _examples_request(body, spec, regression_pb2.RegressionRequest)
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
