"""TF Serving's and TensorFlow's message classes for the client, without TensorFlow.

The generated `tensorflow_serving.apis.*_pb2` modules import `tensorflow.core.*_pb2`, and any
`tensorflow.*` import first runs `tensorflow/__init__.py`: the whole runtime, about 10 s. The
client only needs the message layouts. So at build time `generate_protos` writes their
FileDescriptorProtos to a FileDescriptorSet next to this module, and here they are loaded into
a private `DescriptorPool` and message classes are made from it.

Nothing is registered in protobuf's default pool, so these classes cannot clash with
TensorFlow's own when both are loaded in one process (tests, the demo, infra validation). The
two kinds are distinct classes: convert between them through bytes (`FromString`), not with
`CopyFrom`.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from ctpipe.serving.client.errors import ClientError
from ctpipe.serving.client.generate_protos import DESCRIPTOR_SET

_REBUILD = "run `make venv` (or `python -m ctpipe.serving.client.generate_protos`) to build it"


def _pool() -> descriptor_pool.DescriptorPool:
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    except FileNotFoundError:
        raise ClientError(f"{DESCRIPTOR_SET} is missing: it is generated at build time; "
                          f"{_REBUILD}") from None
    except DecodeError as err:
        raise ClientError(f"{DESCRIPTOR_SET} is not a FileDescriptorSet ({err}); "
                          f"{_REBUILD}") from None
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # dependencies first, as written
        pool.Add(file)
    return pool


_POOL = _pool()


def _message(full_name: str) -> type[Message]:
    try:
        return GetMessageClass(_POOL.FindMessageTypeByName(full_name))
    except KeyError:
        raise ClientError(f"{DESCRIPTOR_SET} has no message {full_name}; {_REBUILD}") from None


PredictRequest = _message("tensorflow.serving.PredictRequest")
PredictResponse = _message("tensorflow.serving.PredictResponse")
GetModelStatusRequest = _message("tensorflow.serving.GetModelStatusRequest")
GetModelStatusResponse = _message("tensorflow.serving.GetModelStatusResponse")
GetModelMetadataRequest = _message("tensorflow.serving.GetModelMetadataRequest")
GetModelMetadataResponse = _message("tensorflow.serving.GetModelMetadataResponse")
SignatureDefMap = _message("tensorflow.serving.SignatureDefMap")
ReloadConfigRequest = _message("tensorflow.serving.ReloadConfigRequest")
ReloadConfigResponse = _message("tensorflow.serving.ReloadConfigResponse")
ModelServerConfig = _message("tensorflow.serving.ModelServerConfig")
PredictionLog = _message("tensorflow.serving.PredictionLog")
ClassificationRequest = _message("tensorflow.serving.ClassificationRequest")
RegressionRequest = _message("tensorflow.serving.RegressionRequest")
MultiInferenceRequest = _message("tensorflow.serving.MultiInferenceRequest")
Example = _message("tensorflow.Example")

# Enum values by name (message classes made from a pool carry no enum attributes).
DT_STRING = _POOL.FindEnumTypeByName("tensorflow.DataType").values_by_name["DT_STRING"].number
VERSION_STATES = {value.number: value.name for value in _POOL.FindMessageTypeByName(
    "tensorflow.serving.ModelVersionStatus").enum_types_by_name["State"].values}
