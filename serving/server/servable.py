"""One loaded model version: its signatures (metadata cached at load) and how to run them.

Requests run the loaded signature's concrete function directly; everything a request needs to
be checked against (input aliases, dtypes, shapes, output aliases, method names) is read once
from `saved_model.pb` at load time, so the per-request Python work is dictionary look-ups and
tensor conversion.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from ctpipe.serving.server.errors import RequestError, invalid

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"

# Typed TensorProto field per dtype: TF Serving answers in these, not in tensor_content.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val", types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val", types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_STRING: "string_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
}


# A request tensor with fewer values than its shape is filled up to this many elements at most
# (TF would allocate any size; a few bytes of request must not claim gigabytes).
MAX_FILLED_ELEMENTS = 1 << 24


class LoadError(RuntimeError):
    """A version that cannot be served; the message is what GetModelStatus shows."""


def dtype_name(dtype: int) -> str:
    """TF's own spelling (`float`, `string`, `int64`) as used in its error messages."""
    return types_pb2.DataType.Name(dtype)[3:].lower() if dtype else "invalid"


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    method_name: str
    inputs: Mapping[str, meta_graph_pb2.TensorInfo]
    outputs: Mapping[str, meta_graph_pb2.TensorInfo]
    function: Any
    input_order: tuple[str, ...]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the concrete function; TF's own errors become INVALID_ARGUMENT as in TF Serving."""
        try:
            outputs = self.function(**{alias: tf.constant(value) for alias, value in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise invalid(getattr(err, "message", None) or str(err)) from None
        except tf.errors.OpError as err:
            raise RequestError(grpc.StatusCode.INTERNAL, err.message) from None
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}

    def check_input(self, alias: str, proto: tensor_pb2.TensorProto) -> None:
        """The runtime's own dtype message; a shape that can never fit the signature. Checked
        on the request's TensorProto, before any memory is spent on its values."""
        info = self.inputs[alias]
        if proto.dtype != info.dtype:
            position = self.input_order.index(alias)
            raise invalid(f"Expects arg[{position}] to be {dtype_name(info.dtype)} but "
                          f"{dtype_name(proto.dtype)} is provided")
        if info.tensor_shape.unknown_rank:
            return
        expected = [d.size for d in info.tensor_shape.dim]
        shape = [d.size for d in proto.tensor_shape.dim]
        if len(expected) != len(shape) or any(e not in (-1, got)
                                              for e, got in zip(expected, shape)):
            shown = ",".join("?" if e == -1 else str(e) for e in expected)
            raise invalid(f"Incompatible shapes for input {alias}: [{shown}] expected, "
                          f"[{','.join(map(str, shape))}] provided")


@dataclasses.dataclass
class Servable:
    """A loaded version; kept alive by every in-flight request that resolved it."""

    model_name: str
    version: int
    path: str
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
    signatures: Mapping[str, Signature]
    keep_alive: Any


def _read_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    pb = os.path.join(path, "saved_model.pb")
    pbtxt = os.path.join(path, "saved_model.pbtxt")
    saved_model = saved_model_pb2.SavedModel()
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as handle:
                saved_model.ParseFromString(handle.read())
        elif os.path.isfile(pbtxt):
            with open(pbtxt) as handle:
                text_format.Parse(handle.read(), saved_model)
        else:
            raise LoadError("Could not find SavedModel .pb or .pbtxt at supplied export directory "
                            f"path: {path}")
    except (DecodeError, text_format.ParseError) as err:
        raise LoadError(f"Failed to parse SavedModel at {path}: {err}") from None
    serving = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags]
    if not serving:
        raise LoadError(f"Could not find meta graph def matching supplied tags: {{ serve }}. "
                        f"To inspect available tag-sets in the SavedModel, please use the "
                        f"SavedModel CLI: `saved_model_cli` ({path})")
    return serving[0]


def load_servable(model_name: str, version: int, path: str) -> Servable:
    meta_graph = _read_meta_graph(path)
    try:
        loaded = tf.saved_model.load(path, tags=["serve"])
    except Exception as err:  # noqa: BLE001 - any load failure is the version's status
        raise LoadError(f"Failed to load SavedModel at {path}: {type(err).__name__}: {err}") from err
    signatures = {}
    for name, signature_def in meta_graph.signature_def.items():
        if name not in loaded.signatures:
            continue  # e.g. __saver_def__ entries of TF1 models: not callable signatures
        signatures[name] = Signature(
            name=name, method_name=signature_def.method_name,
            inputs=dict(signature_def.inputs), outputs=dict(signature_def.outputs),
            function=loaded.signatures[name], input_order=tuple(sorted(signature_def.inputs)))
    return Servable(model_name, version, path,
                    {name: meta_graph.signature_def[name] for name in signatures},
                    signatures, loaded)


def tensor_to_array(proto: tensor_pb2.TensorProto, alias: str) -> np.ndarray:
    """A request TensorProto (typed fields or tensor_content) -> numpy array. Typed fields may
    hold fewer values than the shape (TF repeats the last one), up to MAX_FILLED_ELEMENTS."""
    shape = [d.size for d in proto.tensor_shape.dim]
    elements = math.prod(shape)
    if any(size < 0 for size in shape):
        raise invalid(f"tensor parsing error: {alias}")
    if proto.dtype == types_pb2.DT_STRING:
        if len(proto.string_val) != elements:
            raise invalid(f"tensor parsing error: {alias}")
        values = np.empty(elements, dtype=object)
        values[:] = list(proto.string_val)
        return values.reshape(shape)
    field = _VALUE_FIELDS.get(proto.dtype)
    if (not proto.tensor_content and field is not None and elements > MAX_FILLED_ELEMENTS
            and len(getattr(proto, field)) != elements):
        raise invalid(f"tensor parsing error: {alias}")
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as err:
        raise invalid(f"tensor parsing error: {alias}") from err


def array_to_tensor(value: np.ndarray, dtype: int) -> tensor_pb2.TensorProto:
    """numpy -> TensorProto written to the typed value field, as TF Serving answers."""
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in value.shape]))
    field = _VALUE_FIELDS.get(dtype)
    if field is None:
        proto.tensor_content = np.ascontiguousarray(value).tobytes()
    elif field == "half_val":
        proto.half_val.extend(value.astype(np.float16).view(np.uint16).ravel().tolist())
    else:
        getattr(proto, field).extend(value.ravel().tolist())
    return proto
