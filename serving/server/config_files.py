"""The server's configuration files: the text protos TF Serving reads at start-up (and, for the
model config, again when polled), parsed with protobuf's own text format.

`ModelServerConfig` (with logging config) ships in tensorflow-serving-api. `BatchingParameters`,
`SSLConfig` and `MonitoringConfig` do not: they are declared here, field for field with TF
Serving's .proto files (same names, numbers and types), in a private descriptor pool, so a file
written for real TF Serving parses identically and a misspelt field is an error naming it.
(The client edits version labels in the same model config file with its own TensorFlow-free
protos: `ctpipe.serving.client.version_labels`.)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2
from google.protobuf.message_factory import GetMessageClass
from tensorflow_serving.config import model_server_config_pb2


class ConfigFileError(ValueError):
    """A configuration file that cannot be read or parsed; the message names the file."""


_FIELD = descriptor_pb2.FieldDescriptorProto
# (message, [(field name, number, type, label, type name)]) as in TF Serving's .proto files.
_MESSAGES = {
    "BatchingParameters": [
        ("max_batch_size", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("num_batch_threads", 4, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 5, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, _FIELD.TYPE_INT64, _FIELD.LABEL_REPEATED, None),
        ("pad_variable_length_inputs", 7, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
        ("enable_large_batch_splitting", 8, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ],
    "SSLConfig": [
        ("server_key", 1, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("server_cert", 2, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("custom_ca", 3, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("client_verify", 4, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
    ],
    "PrometheusConfig": [
        ("enable", 1, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
        ("path", 2, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
    ],
    "MonitoringConfig": [
        ("prometheus_config", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL,
         ".tensorflow.serving.PrometheusConfig"),
    ],
}


def _message_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="ctpipe_serving/tf_serving_configs.proto", package="tensorflow.serving",
        syntax="proto3", dependency=[wrappers.name])
    for message_name, fields in _MESSAGES.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(file_proto)
    return {name: GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in _MESSAGES}


_CLASSES = _message_classes()
BatchingParameters = _CLASSES["BatchingParameters"]
SSLConfig = _CLASSES["SSLConfig"]
MonitoringConfig = _CLASSES["MonitoringConfig"]

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def parse_text_proto(path: str, message_class):
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigFileError(f"cannot read {path}: {err.strerror}") from None
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as err:
        raise ConfigFileError(f"{path}: not a valid {message_class.DESCRIPTOR.name}: {err}") from None


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    config = parse_text_proto(path, model_server_config_pb2.ModelServerConfig)
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigFileError(f"{path}: custom_model_config is not supported, use model_config_list")
    return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """What --model_name/--model_base_path mean: one model, the latest version."""
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name=name, base_path=base_path,
                                                model_platform="tensorflow")
    model.model_version_policy.latest.num_versions = 1
    return config


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """BatchingParameters with TF Serving's defaults filled in."""

    max_batch_size: int = 1000  # rows in one batch; a larger request is refused
    batch_timeout_micros: int = 0  # how long an open batch waits for more rows
    max_enqueued_batches: int = 10  # waiting batches before the queue reports full
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple[int, ...] = ()  # batches are padded up to one of these

    def __post_init__(self):
        if self.max_batch_size <= 0 or self.max_enqueued_batches <= 0 or self.num_batch_threads <= 0:
            raise ConfigFileError("max_batch_size, max_enqueued_batches and num_batch_threads "
                                  "must be positive")
        sizes = self.allowed_batch_sizes
        if sizes:
            if list(sizes) != sorted(set(sizes)):
                raise ConfigFileError("allowed_batch_sizes must be increasing")
            if sizes[-1] != self.max_batch_size:
                # TF Serving's own rule: the largest allowed size is the maximum batch size.
                raise ConfigFileError("The largest entry in allowed_batch_sizes must be equal to "
                                      "max_batch_size")


def read_batching_options(path: str | None, cores: int) -> BatchingOptions:
    if not path:
        return BatchingOptions(num_batch_threads=cores)
    params = parse_text_proto(path, BatchingParameters)
    def value(field: str, default: int) -> int:
        return getattr(params, field).value if params.HasField(field) else default
    return BatchingOptions(
        max_batch_size=value("max_batch_size", 1000),
        batch_timeout_micros=value("batch_timeout_micros", 0),
        max_enqueued_batches=value("max_enqueued_batches", 10),
        num_batch_threads=value("num_batch_threads", cores),
        allowed_batch_sizes=tuple(params.allowed_batch_sizes),
    )
