"""JSON <-> tensors and request protos, as TF Serving's REST API converts them (its
`util/json_tensor`): the row ("instances") and columnar ("inputs") formats of Predict, the
examples of Classify and Regress, and the responses back to JSON. Every refusal is a
RequestError with TF Serving's wording, so a client sees the same message from either server.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

from ctpipe.serving.server.errors import RequestError, invalid
from ctpipe.serving.server.servable import Signature, dtype_name, tensor_to_array

# A JSON tensor deeper than this is refused (numpy's own limit is 32 dimensions).
_MAX_RANK = 32
# Integer dtypes: the JSON integers they take (TF Serving's parser takes any int32 for the
# narrower types) and their TensorProto field.
_INT_RANGES = {types_pb2.DT_INT8: (-2**31, 2**31 - 1), types_pb2.DT_INT16: (-2**31, 2**31 - 1),
               types_pb2.DT_INT32: (-2**31, 2**31 - 1), types_pb2.DT_UINT8: (-2**31, 2**31 - 1),
               types_pb2.DT_INT64: (-2**63, 2**63 - 1), types_pb2.DT_UINT32: (0, 2**32 - 1),
               types_pb2.DT_UINT64: (0, 2**64 - 1)}
_INT_FIELDS = {types_pb2.DT_INT8: "int_val", types_pb2.DT_INT16: "int_val",
               types_pb2.DT_INT32: "int_val", types_pb2.DT_UINT8: "int_val",
               types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
               types_pb2.DT_UINT64: "uint64_val"}
# Largest integer a float type holds exactly, and its largest finite value.
_FLOAT_LIMITS = {types_pb2.DT_FLOAT: (2**24 - 1, float(np.finfo(np.float32).max), "float"),
                 types_pb2.DT_DOUBLE: (2**53 - 1, float(np.finfo(np.float64).max), "double")}


def _json(value: Any) -> str:
    """A JSON value as error messages quote it (cut: messages are truncated anyway)."""
    return json.dumps(value, ensure_ascii=False)[:200]


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _utf8(text: str) -> str:
    """`text` if it can go into a proto string field (JSON may escape lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise invalid(f"JSON Value: {_json(text)} is not valid UTF-8") from None
    return text


def _is_base64_object(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)


def _string_value(value: Any) -> bytes:
    """A JSON string (UTF-8) or `{"b64": "..."}` -> bytes."""
    if isinstance(value, dict):
        if not _is_base64_object(value):
            raise invalid(f"JSON Value: {_json(value)} not formatted correctly for base64 data")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise invalid("Unable to base64 decode") from None
    if not isinstance(value, str):
        raise invalid(f"JSON Value: {_json(value)} Type: {_json_type(value)} is not of "
                      "expected type: string")
    return _utf8(value).encode()


def _add_value(tensor: tensor_pb2.TensorProto, value: Any, dtype: int) -> None:
    """Appends one JSON leaf to the tensor's typed values, as TF Serving's JSON parser does."""
    def type_error() -> RequestError:
        return invalid(f"JSON Value: {_json(value)} Type: {_json_type(value)} is not of "
                       f"expected type: {dtype_name(dtype)}")

    if dtype == types_pb2.DT_STRING:
        tensor.string_val.append(_string_value(value))
    elif dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise type_error()
        tensor.bool_val.append(value)
    elif dtype in _FLOAT_LIMITS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise type_error()
        exact_int, largest, name = _FLOAT_LIMITS[dtype]
        if (abs(value) > exact_int) if isinstance(value, int) else (
                math.isfinite(value) and abs(value) > largest):
            raise invalid(f"Cannot convert JSON value: {_json(value)} to {name} without loss "
                          "of precision.")
        getattr(tensor, "float_val" if dtype == types_pb2.DT_FLOAT else "double_val").append(
            float(value))
    elif dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise type_error()
        getattr(tensor, _INT_FIELDS[dtype]).append(value)
    else:
        raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {_json(value)} to type: "
                           f"{dtype_name(dtype)}")


def _to_tensor(value: Any, dtype: int, alias: str) -> tensor_pb2.TensorProto:
    """A JSON value (a scalar or nested lists of them) -> TensorProto of `dtype`. The shape
    comes from the first element at each level; every list must match it (TF Serving's rule:
    dense tensors only)."""
    tensor = tensor_pb2.TensorProto(dtype=dtype)
    level = value
    while isinstance(level, list):
        if len(tensor.tensor_shape.dim) == _MAX_RANK:
            raise invalid(f"JSON Value for input {alias} is nested deeper than {_MAX_RANK} "
                          "levels")
        tensor.tensor_shape.dim.add(size=len(level))
        if not level:
            break
        level = level[0]
    rank = len(tensor.tensor_shape.dim)
    pending = [(value, 0)]  # depth-first, in order
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, list):
            if depth != rank:
                raise invalid(f"JSON Value: {_json(item)} found at incorrect level: {depth + 1} "
                              f"in the JSON DOM. Expected at level: {rank}")
            _add_value(tensor, item, dtype)
            continue
        if depth >= rank:
            raise invalid(f"Encountered list at unexpected level: {depth} expected < {rank}")
        if len(item) != tensor.tensor_shape.dim[depth].size:
            raise invalid(f"Encountered list at unexpected size: {len(item)} at level: {depth} "
                          f"expected size: {tensor.tensor_shape.dim[depth].size}")
        pending.extend((element, depth + 1) for element in reversed(item))
    return tensor


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


def signature_name(body: dict) -> str:
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {_json(name)} not formatted correctly. 'signature_name' key "
                      "must be a string value.")
    return _utf8(name)


def _named(value: Any) -> bool:
    """An object of named inputs (not a `{"b64": ...}` string)."""
    return isinstance(value, dict) and not _is_base64_object(value)


def _predict_inputs(body: dict, aliases: list[str]) -> dict[str, Any]:
    """The JSON value of each input: the row format ("instances": one entry per example,
    stacked here) or the columnar one ("inputs")."""
    if ("instances" in body) == ("inputs" in body):
        raise invalid("Missing 'inputs' or 'instances' key" if "instances" not in body else
                      "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                      "keys exclusively")
    if "inputs" in body:
        inputs = body["inputs"]
        if _named(inputs):
            return inputs
        if len(aliases) != 1:
            raise invalid(f"inputs must be an object naming the signature's inputs {aliases}")
        return {aliases[0]: inputs}
    instances = body["instances"]
    if not isinstance(instances, list):
        raise invalid(f"JSON Value: {_json(instances)} Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid(f"JSON Value: {_json(instances)} No values in 'instances' list")
    if not _named(instances[0]):
        if len(aliases) != 1:
            raise invalid(f"instances must be objects naming the signature's inputs {aliases}")
        return {aliases[0]: instances}
    columns: dict[str, list] = {alias: [] for alias in instances[0]}
    for index, instance in enumerate(instances):
        if not _named(instance) or set(instance) != set(columns):
            raise invalid(f"Failed to process element: {index} of 'instances' list. JSON Value: "
                          f"{_json(instance)} must name the same inputs as the first "
                          f"({', '.join(sorted(columns))})")
        for alias, value in instance.items():
            columns[alias].append(value)
    return columns


def predict_request(body: dict, spec: model_pb2.ModelSpec,
                     signature: Signature) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=spec)
    for alias, value in _predict_inputs(body, sorted(signature.inputs)).items():
        if alias not in signature.inputs:
            raise invalid(f"JSON object: does not have named input: {alias}")
        request.inputs[alias].CopyFrom(_to_tensor(value, signature.inputs[alias].dtype, alias))
    output_filter = body.get("output_filter", [])
    if not isinstance(output_filter, list) or not all(isinstance(name, str)
                                                      for name in output_filter):
        raise invalid(f"JSON Value: {_json(output_filter)} 'output_filter' must be a list of "
                      "output names")
    request.output_filter.extend(_utf8(name) for name in output_filter)
    return request


def predict_json(response: predict_pb2.PredictResponse, row_format: bool) -> dict:
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
    """A JSON feature value (a scalar or a list of them) -> tf.train.Feature: integers make an
    int64 list, numbers with a fraction a float list, strings (or base64 objects) bytes."""
    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if all(isinstance(v, int) for v in values):  # bools included, as 0/1
        if not all(-2**63 <= v < 2**63 for v in values):
            raise invalid(f"JSON Value: {_json(value)} does not fit an int64 feature")
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, dict)) for v in values):
        feature.bytes_list.value.extend(_string_value(v) for v in values)
    else:
        raise invalid(f"JSON Value: {_json(value)} Feature values must be all numbers or all "
                      "strings")
    return feature


def _example(features: Any) -> example_pb2.Example:
    if not isinstance(features, dict):
        raise invalid(f"JSON Value: {_json(features)} Example must be a JSON object of feature "
                      "name to value(s)")
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[_utf8(name)].CopyFrom(_feature(value))
    return example


def examples_request(body: dict, spec: model_pb2.ModelSpec, request_type: type[Message]
                      ) -> Message:
    request = request_type(model_spec=spec)
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {_json(examples)} Expecting 'examples' to be an list/array")
    if "context" in body:
        with_context = request.input.example_list_with_context
        with_context.context.CopyFrom(_example(body["context"]))
        with_context.examples.extend(_example(e) for e in examples)
    else:
        request.input.example_list.examples.extend(_example(e) for e in examples)
    return request
