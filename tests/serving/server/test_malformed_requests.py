"""Malformed requests get TF Serving's code for them, never UNKNOWN, INTERNAL or HTTP 500.

A bounded fuzz test against a real server on 127.0.0.1: random and mutated gRPC bodies sent
raw (no client-side serialization) to every method, and mutated JSON bodies to the REST API.
Every answer must carry a code from the expected set, and the server must still serve a valid
request afterwards. The random generator is seeded: a failure reproduces.
"""
from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import grpc
import pytest
import requests
from google.protobuf.message import DecodeError
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    regression_pb2,
)

from ctpipe.common import features
from ctpipe.serving.server.errors import RequestError
from ctpipe.serving.server.servable import MAX_FILLED_ELEMENTS, tensor_to_array
from tests.serving.conftest import MODEL_NAME, in_process_server, predict_request, push_version

SEED = 20261123
GRPC_BODIES = 1500
REST_BODIES = 400
CODE = grpc.StatusCode
# What a malformed request may be answered with: never UNKNOWN or INTERNAL.
EXPECTED_CODES = {CODE.OK, CODE.INVALID_ARGUMENT, CODE.NOT_FOUND, CODE.FAILED_PRECONDITION}
EXPECTED_HTTP = {200, 400, 404}


@pytest.fixture(scope="module")
def served(tmp_path_factory, saved_model_dir):
    root = tmp_path_factory.mktemp("malformed")
    push_version(saved_model_dir, root / "m", 1)
    with in_process_server(root / "m", rest_api_port=-1,
                           file_system_poll_wait_seconds=-1) as (handle, stubs):
        yield handle, stubs


def _valid_bodies(examples: list[bytes]) -> dict[str, bytes]:
    """One well-formed request per method but HandleReloadConfigRequest (the seeds of the
    mutations)."""
    def with_input(request):
        for serialized in examples:
            request.input.example_list.examples.add().ParseFromString(serialized)
        return request

    classify = with_input(classification_pb2.ClassificationRequest())
    classify.model_spec.name = MODEL_NAME
    regress = with_input(regression_pb2.RegressionRequest())
    regress.model_spec.name = MODEL_NAME
    multi = with_input(inference_pb2.MultiInferenceRequest())
    multi.tasks.add(method_name="tensorflow/serving/regress").model_spec.name = MODEL_NAME
    metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata.model_spec.name = MODEL_NAME
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = MODEL_NAME
    return {
        "/tensorflow.serving.PredictionService/Predict":
            predict_request(examples).SerializeToString(),
        "/tensorflow.serving.PredictionService/Classify": classify.SerializeToString(),
        "/tensorflow.serving.PredictionService/Regress": regress.SerializeToString(),
        "/tensorflow.serving.PredictionService/MultiInference": multi.SerializeToString(),
        "/tensorflow.serving.PredictionService/GetModelMetadata": metadata.SerializeToString(),
        "/tensorflow.serving.ModelService/GetModelStatus": status.SerializeToString(),
    }


def _mutated(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    kind = rng.randrange(5)
    if kind == 0:  # flip bits
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del data[rng.randrange(len(data) + 1):]
    elif kind == 2:  # insert random bytes
        position = rng.randrange(len(data) + 1)
        data[position:position] = rng.randbytes(rng.randint(1, 16))
    elif kind == 3:  # overwrite a byte with a varint-ish or length-ish value
        if data:
            data[rng.randrange(len(data))] = rng.choice([0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12])
    else:  # repeat a slice
        start = rng.randrange(len(data) + 1)
        data[start:start] = data[start:start + rng.randint(1, 32)]
    return bytes(data)


def _random_body(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 2, 5, 17, 64, 300]))


def _unparsable_reload_body(rng: random.Random, valid: bytes) -> bytes:
    """Random or mutated bytes that are not a ReloadConfigRequest."""
    while True:
        body = _random_body(rng) if rng.random() < 0.5 else _mutated(valid, rng)
        try:
            model_management_pb2.ReloadConfigRequest.FromString(body)
        except DecodeError:
            return body


def test_fuzzed_grpc_bodies_get_tf_servings_codes(served, serialized_examples, tmp_path):
    _, stubs = served
    rng = random.Random(SEED)
    seeds = _valid_bodies(serialized_examples[:2])
    calls = {path: stubs.channel.unary_unary(path) for path in seeds}
    # Config reloads change what is served: only bodies that are not a ReloadConfigRequest
    # (the effects of valid configs are tested in test_lifecycle.py) and, now and then, the
    # empty body (no config at all: TF Serving takes no action).
    reload_path = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
    calls[reload_path] = stubs.channel.unary_unary(reload_path)
    valid_reload = model_management_pb2.ReloadConfigRequest()
    valid_reload.config.model_config_list.config.add(name="other", base_path=str(tmp_path))
    answers: dict[tuple[str, grpc.StatusCode], int] = {}
    unexpected = []
    started = time.monotonic()
    for index in range(GRPC_BODIES):
        if index % 8 == 7:
            path = reload_path
            body = (b"" if index % 64 == 7 else
                    _unparsable_reload_body(rng, valid_reload.SerializeToString()))
        else:
            path = rng.choice(sorted(seeds))
            body = _random_body(rng) if rng.random() < 0.2 else _mutated(seeds[path], rng)
        try:
            calls[path](body, timeout=10)
            code = CODE.OK
        except grpc.RpcError as err:
            code = err.code()
            if code not in EXPECTED_CODES:
                unexpected.append((path, body, code, err.details()))
        method = path.rsplit("/", 1)[-1]
        answers[(method, code)] = answers.get((method, code), 0) + 1
    assert unexpected == [], unexpected[:5]
    assert time.monotonic() - started < 60
    # The mutations reached past parsing: parse errors, answered requests and later checks.
    assert {("Predict", CODE.INVALID_ARGUMENT), ("Predict", CODE.OK),
            ("GetModelStatus", CODE.NOT_FOUND), ("HandleReloadConfigRequest", CODE.OK),
            ("HandleReloadConfigRequest", CODE.INVALID_ARGUMENT)} <= set(answers), answers
    response = stubs.prediction.Predict(predict_request(serialized_examples[:3]), timeout=10)
    assert response.model_spec.version.value == 1
    assert len(response.outputs[features.PREDICTION_KEY].float_val) == 3


def test_an_unparsable_grpc_body_is_invalid_argument_naming_the_message(served):
    _, stubs = served
    predict = stubs.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as caught:
        predict(b"\x0a\xff\xff\xff", timeout=10)
    assert caught.value.code() == CODE.INVALID_ARGUMENT
    assert caught.value.details().startswith(
        "Could not parse the request body as tensorflow.serving.PredictRequest")


# ---- REST --------------------------------------------------------------------------------

_KEYS = ("instances", "inputs", "signature_name", "examples", "context", "output_filter", "b64")


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(14 if depth < 3 else 10)
    return [
        lambda: rng.randint(-2**70, 2**70),
        lambda: rng.choice([0, 1, -1, 2**31, 2**63, -2**63 - 1]),
        lambda: rng.choice([0.5, -1e308, 1e-320, 3.4e39]),
        lambda: "".join(rng.choice("ab\u00e9\u4e2d\ud800\x00 ") for _ in range(rng.randint(0, 6))),
        lambda: rng.choice([True, False]),
        lambda: None,
        lambda: {"b64": rng.choice(["%%%", base64.b64encode(rng.randbytes(8)).decode(), 7])},
        lambda: [],
        lambda: {},
        lambda: rng.choice([_nested(2), _nested(33), _DEEP]),
        lambda: [_random_json(rng, depth + 1) for _ in range(rng.randint(1, 3))],
        lambda: {rng.choice(_KEYS): _random_json(rng, depth + 1)},
        lambda: [[1, 2], [3]],
        lambda: [{"examples": {"b64": ""}}, {"examples": [1]}],
    ][kind]()


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# Stands for a list nested 5,000 deep, which json.dumps cannot write: see _json_text.
_DEEP = "__nested 5000 deep__"


def _mutated_json(value: Any, rng: random.Random) -> Any:
    """`value` with one random change: a part replaced, removed or added (or all replaced)."""
    if not (isinstance(value, (dict, list)) and value and rng.random() < 0.7):
        return _random_json(rng)
    mutated = type(value)(value)
    where = rng.choice(sorted(value) if isinstance(value, dict) else range(len(value)))
    operation = rng.randrange(3)
    if operation == 0:
        mutated[where] = _mutated_json(value[where], rng)
    elif operation == 1:
        del mutated[where]
    elif isinstance(mutated, dict):
        mutated[rng.choice(_KEYS)] = _random_json(rng)
    else:
        mutated.insert(where, _random_json(rng))
    return mutated


def _json_text(value: Any) -> bytes:
    """JSON text of a mutated body; lone surrogates are kept, _DEEP becomes the deep list."""
    text = json.dumps(value).encode("utf-8", "surrogatepass")
    return text.replace(json.dumps(_DEEP).encode(), b"[" * 5000 + b"1" + b"]" * 5000)


def test_fuzzed_rest_bodies_get_tf_servings_http_codes(served, serialized_examples,
                                                       taxi_rows):
    handle, _ = served
    base = f"http://127.0.0.1:{handle.rest_port}/v1/models/{MODEL_NAME}"
    b64 = [{"b64": base64.b64encode(e).decode()} for e in serialized_examples[:2]]
    trip = {name: value for name, value in taxi_rows[1][0].items() if value}
    seeds: list[tuple[str, Any]] = [
        (":predict", {"instances": b64}),
        (":predict", {"signature_name": "serving_default", "instances": [{"examples": b64[0]}]}),
        (":predict", {"inputs": {"examples": b64}}),
        ("/versions/1:predict", {"inputs": b64, "output_filter": ["probability"]}),
        ("/labels/stable:predict", {"instances": b64}),
        (":classify", {"examples": [trip], "context": {"company": "x"}}),
        (":regress", {"signature_name": "serving_default", "examples": [trip]}),
    ]
    rng = random.Random(SEED)
    unexpected, statuses = [], {}
    with requests.Session() as session:
        for index in range(REST_BODIES):
            suffix, seed = rng.choice(seeds)
            if index % 10 == 0:  # raw byte damage to the JSON text
                data = _mutated(_json_text(seed), rng)
            else:
                data = _json_text(_mutated_json(seed, rng))
            response = session.post(base + suffix, data=data, timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code not in EXPECTED_HTTP or (
                    response.status_code != 200 and set(response.json()) != {"error"}):
                unexpected.append((suffix, data[:300], response.status_code, response.text[:300]))
        assert unexpected == [], unexpected[:5]
        assert {200, 400} <= set(statuses), statuses
        healthy = session.post(f"{base}:predict", json={"instances": b64}, timeout=10)
    assert healthy.status_code == 200
    assert len(healthy.json()["predictions"]) == 2


@pytest.mark.parametrize("body, message", [
    ({"signature_name": 1, "instances": []},
     "JSON Value: 1 not formatted correctly. 'signature_name' key must be a string value."),
    ({"signature_name": None, "instances": ["x"]},
     "JSON Value: null not formatted correctly. 'signature_name' key must be a string value."),
])
def test_a_non_string_signature_name_is_a_400_naming_the_field(served, body, message):
    handle, _ = served
    response = requests.post(f"http://127.0.0.1:{handle.rest_port}/v1/models/{MODEL_NAME}:predict",
                             json=body, timeout=10)
    assert (response.status_code, response.json()) == (400, {"error": message})


@pytest.mark.parametrize("method, path, status, message", [
    ("get", "/versions/99999999999999999999", 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("post", "/versions/99999999999999999999:predict", 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("post", "/labels/%ff:predict", 400, "Unrecognized servable version label: %FF"),
])
def test_malformed_rest_paths_are_answered_with_their_code(served, method, path, status,
                                                           message):
    handle, _ = served
    response = getattr(requests, method)(
        f"http://127.0.0.1:{handle.rest_port}/v1/models/{MODEL_NAME}{path}",
        json={"instances": ["x"]}, timeout=10)
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_a_tensor_claiming_far_more_elements_than_it_carries_is_refused():
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5])
    proto.tensor_shape.dim.add(size=4)
    assert tensor_to_array(proto, "x").tolist() == [1.5] * 4  # TF repeats the last value
    proto.tensor_shape.dim[0].size = MAX_FILLED_ELEMENTS + 1
    with pytest.raises(RequestError, match="tensor parsing error: x") as caught:
        tensor_to_array(proto, "x")
    assert caught.value.code == CODE.INVALID_ARGUMENT
