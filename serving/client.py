"""gRPC client of TensorFlow Serving's API for the big-tipper model.

Works unchanged against real TF Serving and against `ctpipe serve`. It imports grpc and the
generated protos only (see serving/tf_protos.py), never the TensorFlow runtime, so that
`ctpipe predict` starts in well under a second.
"""
from __future__ import annotations

import array
import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import grpc

from models import features
from serving import tf_protos

(predict_pb2, get_model_status_pb2, get_model_metadata_pb2, model_management_pb2,
 prediction_service_pb2_grpc, model_service_pb2_grpc, example_pb2, types_pb2,
 ) = tf_protos.load(
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.model_management_pb2",
    "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "tensorflow_serving.apis.model_service_pb2_grpc",
    "tensorflow.core.example.example_pb2",
    "tensorflow.core.framework.types_pb2",
)

log = logging.getLogger(__name__)

# The ports of the official `tensorflow/serving` image (and of `ctpipe serve`'s defaults).
DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TIMEOUT_SECONDS = 10.0
_STATES = get_model_status_pb2.ModelVersionStatus.State

_FEATURES_BY_NAME = {feature.name: feature for feature in features.FEATURES}


class ServingError(Exception):
    """A request failed; the message names the server, the model and the gRPC status."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


class ModelEndedError(ServingError):
    """A model version reached END: its load failed (TF Serving does not retry it later)."""


class ExampleError(ValueError):
    """An input row cannot be turned into a tf.Example; the message names the row and column."""


# ---------------------------------------------------------------------------------------------
# Input rows -> serialized tf.Examples


def _int_value(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(number)


def row_to_example(row: Mapping[str, Any], row_name: str = "row") -> bytes:
    """One raw row (CSV strings or JSON values) -> serialized tf.Example of the model features.

    Empty cells and nulls are left out, as CsvExampleGen does; the model then uses the
    feature's default. Columns that are not features (the label, tips, timestamps) are ignored,
    so rows of the original trips file can be sent as they are.
    """
    example = example_pb2.Example()
    present = 0
    for name, value in row.items():
        feature = _FEATURES_BY_NAME.get(name)
        if feature is None or value is None or value == "":
            continue
        target = example.features.feature[name]
        try:
            if feature.dtype == "string":
                target.bytes_list.value.append(str(value).encode())
            elif feature.dtype == "int64":
                target.int64_list.value.append(_int_value(str(value)))
            else:
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError(f"{value!r} is not a finite number")
                target.float_list.value.append(number)
        except (TypeError, ValueError) as err:
            raise ExampleError(f"{row_name}, column '{name}' ({feature.dtype}): {err}") from None
        present += 1
    if present == 0:
        raise ExampleError(f"{row_name} has none of the model's features "
                           f"({', '.join(features.FEATURE_NAMES)})")
    return example.SerializeToString()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows from a CSV file with a header, or a JSON file holding a list of objects (or TF
    Serving's REST form `{"instances": [...]}`)."""
    if not path.is_file():
        raise ExampleError(f"input file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ExampleError(f"{path} is not valid JSON: {err}") from None
        if isinstance(data, Mapping) and "instances" in data:
            data = data["instances"]
        if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
            raise ExampleError(f"{path} must hold a list of objects (one per trip) "
                               "or {\"instances\": [...]}")
        rows = [dict(row) for row in data]
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    if not rows:
        raise ExampleError(f"{path} holds no rows")
    return rows


def rows_to_examples(rows: Sequence[Mapping[str, Any]], source: str = "input") -> list[bytes]:
    return [row_to_example(row, f"{source} row {index + 1}") for index, row in enumerate(rows)]


# ---------------------------------------------------------------------------------------------
# Connection settings


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for UNAVAILABLE (server starting, restarting, or a full batch queue).

    Bounded by attempts: with the defaults a dead server is reported after about 1.5 s of
    waiting plus the connection attempts themselves.
    """

    max_attempts: int = 4
    initial_backoff_seconds: float = 0.1
    multiplier: float = 2.0
    max_backoff_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_backoff_seconds < 0 or self.multiplier < 1:
            raise ValueError("backoff must be >= 0 and multiplier >= 1")

    def backoffs(self) -> Iterable[float]:
        """Waits before attempts 2..max_attempts."""
        delay = self.initial_backoff_seconds
        for _ in range(self.max_attempts - 1):
            yield min(delay, self.max_backoff_seconds)
            delay *= self.multiplier


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """gRPC TLS, as TF Serving's --ssl_config_file serves it.

    root_certs: CA bundle that signed the server certificate (None: the system's roots).
    client_cert / client_key: for servers that verify clients (`client_verify: true`).
    server_name: the name to check in the certificate when it differs from the target host.
    """

    root_certs: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.client_cert is None) != (self.client_key is None):
            raise ServingError("TLS: a client certificate needs its key and vice versa")

        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            if not Path(path).is_file():
                raise ServingError(f"TLS {what} file not found: {path}")
            return Path(path).read_bytes()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.root_certs, "root certificate"),
            private_key=read(self.client_key, "client key"),
            certificate_chain=read(self.client_cert, "client certificate"))


# ---------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the server answered: one probability per example and which version produced them."""

    probabilities: list[float]
    model_name: str
    model_version: int
    signature_name: str


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: int
    error_message: str


# ---------------------------------------------------------------------------------------------
# The client


class PredictionClient:
    """Predict, status, metadata and config reload against one TF Serving endpoint.

    Every call has a deadline (`timeout` seconds per attempt) and retries UNAVAILABLE with
    bounded exponential backoff; other errors are raised at once as ServingError. `sleep` is
    what waits between attempts (tests pass one that records the waits).
    """

    def __init__(self, target: str, model_name: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 tls: TlsConfig | None = None, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep):
        if ":" not in target:
            raise ServingError(f"server address must be HOST:PORT, got {target!r}")
        if not model_name:
            raise ServingError("a model name is required")
        if timeout <= 0:
            raise ServingError(f"timeout must be positive, got {timeout}")
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        self.retry = retry
        self._sleep = sleep
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        self._channel = (grpc.secure_channel(target, tls.credentials(), options=options)
                         if tls is not None else grpc.insecure_channel(target, options=options))
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "PredictionClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: Callable, request: Any, what: str) -> Any:
        attempt = 1
        backoffs = iter(self.retry.backoffs())
        while True:
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as err:
                code, details = err.code(), err.details()
                delay = next(backoffs, None) if code == grpc.StatusCode.UNAVAILABLE else None
                if delay is None:
                    tried = f" after {attempt} attempts" if attempt > 1 else ""
                    raise ServingError(f"{what} on {self.target} failed{tried}: "
                                       f"{code.name}: {details}", code) from None
                log.info("%s on %s: UNAVAILABLE (%s); retry %d in %.2f s",
                         what, self.target, details, attempt, delay)
                self._sleep(delay)
                attempt += 1

    def _model_spec(self, spec: Any, version: int | None, label: str | None,
                    signature_name: str | None = None) -> None:
        if version is not None and label is not None:
            raise ServingError("give a model version or a version label, not both")
        spec.name = self.model_name
        if version is not None:
            spec.version.value = version
        elif label is not None:
            spec.version_label = label
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict(self, serialized_examples: Sequence[bytes], *, version: int | None = None,
                label: str | None = None,
                signature_name: str = DEFAULT_SIGNATURE) -> Prediction:
        """Scores serialized tf.Examples; the served version comes from the response."""
        if not serialized_examples:
            raise ServingError("no examples to send")
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, version, label, signature_name)
        tensor = request.inputs[features.EXAMPLES_KEY]
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.dim.add().size = len(serialized_examples)
        tensor.string_val.extend(serialized_examples)
        response = self._call(self._prediction.Predict, request,
                              f"Predict({self._name(version, label)})")
        if features.PREDICTION_KEY not in response.outputs:
            raise ServingError(f"response of {self.target} has no '{features.PREDICTION_KEY}' "
                               f"output (got {sorted(response.outputs)})")
        output = response.outputs[features.PREDICTION_KEY]
        values = list(output.float_val) or _tensor_content_floats(output)
        if len(values) != len(serialized_examples):
            raise ServingError(f"{self.target} returned {len(values)} predictions for "
                               f"{len(serialized_examples)} examples")
        return Prediction(values, response.model_spec.name or self.model_name,
                          response.model_spec.version.value, response.model_spec.signature_name)

    def model_status(self, version: int | None = None) -> list[VersionStatus]:
        """Every version the server knows of the model (or the one asked for), newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec, version, None)
        response = self._call(self._models.GetModelStatus, request,
                              f"GetModelStatus({self._name(version, None)})")
        statuses = [VersionStatus(s.version, _STATES.Name(s.state), s.status.error_code,
                                  s.status.error_message)
                    for s in response.model_version_status]
        return sorted(statuses, key=lambda s: s.version, reverse=True)

    def wait_until_available(self, timeout: float, version: int | None = None,
                             poll_seconds: float = 0.5) -> list[VersionStatus]:
        """Polls GetModelStatus until every live version is AVAILABLE, like TFX's
        InfraValidator; raises at once when a version ended in error (its load failed). A
        version in END without error is an older one that was unloaded: it is ignored."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                statuses = self.model_status(version)
            except ServingError as err:
                if err.code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    raise
                statuses, last = [], str(err)
            failed = [s for s in statuses if s.state == "END" and s.error_code != 0]
            if failed:
                raise ModelEndedError(f"model {self.model_name} version {failed[0].version} "
                                      f"failed to load: {failed[0].error_message}")
            live = [s for s in statuses if s.state != "END"]
            if live and all(s.state == "AVAILABLE" for s in live):
                return live
            if statuses:
                last = ", ".join(f"{s.version}: {s.state}" for s in statuses)
            if time.monotonic() >= deadline:
                raise ServingError(f"model {self.model_name} on {self.target} not AVAILABLE "
                                   f"after {timeout:.0f} s ({last})")
            self._sleep(poll_seconds)

    def signature_inputs(self, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, str]:
        """Input aliases of a signature -> tensor names, from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._model_spec(request.model_spec, None, None)
        request.metadata_field.append("signature_def")
        response = self._call(self._prediction.GetModelMetadata, request, "GetModelMetadata")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        if signature_name not in signatures.signature_def:
            raise ServingError(f"model {self.model_name} has no signature '{signature_name}' "
                               f"(has {sorted(signatures.signature_def)})")
        return {alias: info.name
                for alias, info in signatures.signature_def[signature_name].inputs.items()}

    def reload_config(self, config: Any) -> None:
        """Sends a ModelServerConfig (HandleReloadConfigRequest); it replaces the server's
        whole config, as TF Serving does."""
        request = model_management_pb2.ReloadConfigRequest(config=config)
        response = self._call(self._models.HandleReloadConfigRequest, request,
                              "HandleReloadConfigRequest")
        if response.status.error_code != 0:
            raise ServingError(f"{self.target} rejected the model config: "
                               f"{response.status.error_message}")

    def _name(self, version: int | None, label: str | None) -> str:
        if version is not None:
            return f"{self.model_name}, version {version}"
        if label is not None:
            return f"{self.model_name}, label {label}"
        return self.model_name


def _tensor_content_floats(tensor: Any) -> list[float]:
    """Outputs sent as raw little-endian float32 bytes (TF Serving's --tensor_content flag)."""
    values = array.array("f")
    values.frombytes(tensor.tensor_content)
    return values.tolist()
