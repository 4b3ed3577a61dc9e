"""gRPC client of TensorFlow Serving's API for the big-tipper model.

Works unchanged against real TF Serving and against `ctpipe serve`. It imports grpc and the
client's own message classes (`ctpipe.serving.client.protos`), never the TensorFlow runtime, so that
`ctpipe predict` starts in well under a second. Calls go through `channel.unary_unary` with the
method paths of TF Serving's services; UNAVAILABLE (a server starting or restarting, a full
batching queue) is retried by gRPC itself, following the channel's service config.
"""
from __future__ import annotations

import array
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Sequence

import grpc
from google.protobuf.message import Message

from ctpipe.common import features
from ctpipe.serving.client import protos
from ctpipe.serving.client.errors import ClientError, ModelEndedError
from ctpipe.serving.prediction_log import REQUEST_ID

# The ports of the official `tensorflow/serving` image (and of `ctpipe serve`'s defaults).
DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TIMEOUT_SECONDS = 10.0
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
# gRPC accepts at most 5 attempts in a retry policy (more are silently capped).
_MAX_GRPC_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """gRPC's retry policy for UNAVAILABLE: at most `max_attempts` attempts in all, waiting
    a random time up to min(initial * multiplier**(n-1), max) before retry n (gRPC's jittered
    exponential backoff). With the defaults a dead server is reported after at most 0.7 s of
    waiting plus the connection attempts. `max_attempts=1` turns retries off."""

    max_attempts: int = 4
    initial_backoff_seconds: float = 0.1
    multiplier: float = 2.0
    max_backoff_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= _MAX_GRPC_ATTEMPTS:
            raise ValueError(f"max_attempts must be within 1..{_MAX_GRPC_ATTEMPTS} (gRPC's "
                             f"limit), got {self.max_attempts}")
        if self.initial_backoff_seconds <= 0 or self.multiplier <= 0 or (
                self.max_backoff_seconds < self.initial_backoff_seconds):
            raise ValueError("backoffs must be positive, the maximum at least the initial one, "
                             "the multiplier positive")

    def service_config(self) -> str:
        """The channel's service config (JSON) applying this policy to both of TF Serving's
        services; without retries, one that only names them."""
        method_config: dict[str, Any] = {
            "name": [{"service": PREDICTION_SERVICE}, {"service": MODEL_SERVICE}]}
        if self.max_attempts > 1:
            method_config["retryPolicy"] = {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff_seconds}s",
                "maxBackoff": f"{self.max_backoff_seconds}s",
                "backoffMultiplier": self.multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            }
        return json.dumps({"methodConfig": [method_config]})


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
            raise ClientError("TLS: a client certificate needs its key and vice versa")

        def read(path: Path | None, what: str) -> bytes | None:
            if path is None:
                return None
            if not Path(path).is_file():
                raise ClientError(f"TLS {what} file not found: {path}")
            return Path(path).read_bytes()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.root_certs, "root certificate"),
            private_key=read(self.client_key, "client key"),
            certificate_chain=read(self.client_cert, "client certificate"))


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the server answered: one probability per example and which version produced them."""

    probabilities: list[float]
    model_name: str
    model_version: int
    signature_name: str
    # The request id the server returned (`ctpipe gateway` does; TF Serving returns none):
    # the key that joins this answer's outcome to the prediction log.
    request_id: str | None = None


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: int
    error_message: str


class PredictionClient:
    """Predict, status, metadata and config reload against one TF Serving endpoint.

    Every call has a deadline of `timeout` seconds, retries included; UNAVAILABLE is retried by
    gRPC (`retry`); other errors are raised at once as ClientError with the gRPC status code.
    """

    def __init__(self, target: str, model_name: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 tls: TlsConfig | None = None, retry: RetryPolicy = RetryPolicy()):
        if ":" not in target:
            raise ClientError(f"server address must be HOST:PORT, got {target!r}")
        if not model_name:
            raise ClientError("a model name is required")
        if timeout <= 0:
            raise ClientError(f"timeout must be positive, got {timeout}")
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        self.retry = retry
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.enable_retries", 1),
                   ("grpc.service_config", retry.service_config())]
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        self._channel = (grpc.secure_channel(target, tls.credentials(), options=options)
                         if tls is not None else grpc.insecure_channel(target, options=options))
        self._predict = self._method(PREDICTION_SERVICE, "Predict", protos.PredictRequest,
                                     protos.PredictResponse)
        self._metadata = self._method(PREDICTION_SERVICE, "GetModelMetadata",
                                      protos.GetModelMetadataRequest,
                                      protos.GetModelMetadataResponse)
        self._status = self._method(MODEL_SERVICE, "GetModelStatus",
                                    protos.GetModelStatusRequest, protos.GetModelStatusResponse)
        self._reload = self._method(MODEL_SERVICE, "HandleReloadConfigRequest",
                                    protos.ReloadConfigRequest, protos.ReloadConfigResponse)

    def _method(self, service: str, method: str, request_class: type[Message],
                response_class: type[Message]) -> grpc.UnaryUnaryMultiCallable:
        return self._channel.unary_unary(f"/{service}/{method}",
                                         request_serializer=request_class.SerializeToString,
                                         response_deserializer=response_class.FromString)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "PredictionClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable, request: Message, what: str) -> Any:
        return self._call_with_metadata(method, request, what, ())[0]

    def _call_with_metadata(self, method: grpc.UnaryUnaryMultiCallable, request: Message,
                            what: str, metadata: tuple) -> tuple[Any, dict[str, str]]:
        """The answer and the trailing metadata the server returned."""
        try:
            response, call = method.with_call(request, timeout=self.timeout,
                                              metadata=metadata or None)
            return response, {key: value for key, value in call.trailing_metadata() or ()
                              if isinstance(value, str)}
        except grpc.RpcError as err:
            code = err.code()
            retried = (f" (retried as gRPC does, at most {self.retry.max_attempts} attempts)"
                       if code == grpc.StatusCode.UNAVAILABLE and self.retry.max_attempts > 1
                       else "")
            raise ClientError(f"{what} on {self.target} failed: {code.name}: {err.details()}"
                              f"{retried}", code) from None

    def _model_spec(self, spec: Any, version: int | None, label: str | None,
                    signature_name: str | None = None) -> None:
        if version is not None and label is not None:
            raise ClientError("give a model version or a version label, not both")
        spec.name = self.model_name
        if version is not None:
            spec.version.value = version
        elif label is not None:
            spec.version_label = label
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict(self, serialized_examples: Sequence[bytes], *, version: int | None = None,
                label: str | None = None, signature_name: str = DEFAULT_SIGNATURE,
                request_id: str | None = None) -> Prediction:
        """Scores serialized tf.Examples; the served version comes from the response.
        `request_id` is sent as `x-request-id` (a gateway assigns one when none is sent)."""
        if not serialized_examples:
            raise ClientError("no examples to send")
        request = protos.PredictRequest()
        self._model_spec(request.model_spec, version, label, signature_name)
        tensor = request.inputs[features.EXAMPLES_KEY]
        tensor.dtype = protos.DT_STRING
        tensor.tensor_shape.dim.add().size = len(serialized_examples)
        tensor.string_val.extend(serialized_examples)
        response, trailing = self._call_with_metadata(
            self._predict, request, f"Predict({self._name(version, label)})",
            ((REQUEST_ID, request_id),) if request_id else ())
        if features.PREDICTION_KEY not in response.outputs:
            raise ClientError(f"response of {self.target} has no '{features.PREDICTION_KEY}' "
                              f"output (got {sorted(response.outputs)})")
        output = response.outputs[features.PREDICTION_KEY]
        values = list(output.float_val) or _tensor_content_floats(output)
        if len(values) != len(serialized_examples):
            raise ClientError(f"{self.target} returned {len(values)} predictions for "
                              f"{len(serialized_examples)} examples")
        return Prediction(values, response.model_spec.name or self.model_name,
                          response.model_spec.version.value, response.model_spec.signature_name,
                          trailing.get(REQUEST_ID))

    def model_status(self, version: int | None = None) -> list[VersionStatus]:
        """Every version the server knows of the model (or the one asked for), newest first."""
        request = protos.GetModelStatusRequest()
        self._model_spec(request.model_spec, version, None)
        response = self._call(self._status, request,
                              f"GetModelStatus({self._name(version, None)})")
        statuses = [VersionStatus(s.version, protos.VERSION_STATES.get(s.state, str(s.state)),
                                  s.status.error_code, s.status.error_message)
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
            except ClientError as err:
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
                raise ClientError(f"model {self.model_name} on {self.target} not AVAILABLE "
                                  f"after {timeout:.0f} s ({last})")
            time.sleep(poll_seconds)

    def signature_inputs(self, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, str]:
        """Input aliases of a signature -> tensor names, from GetModelMetadata."""
        request = protos.GetModelMetadataRequest()
        self._model_spec(request.model_spec, None, None)
        request.metadata_field.append("signature_def")
        response = self._call(self._metadata, request, "GetModelMetadata")
        signatures = protos.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(signatures):
            raise ClientError(f"metadata of {self.target} holds no SignatureDefMap")
        if signature_name not in signatures.signature_def:
            raise ClientError(f"model {self.model_name} has no signature '{signature_name}' "
                              f"(has {sorted(signatures.signature_def)})")
        return {alias: info.name
                for alias, info in signatures.signature_def[signature_name].inputs.items()}

    def reload_config(self, config: Message) -> None:
        """Sends a ModelServerConfig (HandleReloadConfigRequest); it replaces the server's
        whole config, as TF Serving does. Any ModelServerConfig class will do (it travels as
        bytes), e.g. `version_labels.read_config`'s."""
        request = protos.ReloadConfigRequest()
        request.config.ParseFromString(config.SerializeToString())
        response = self._call(self._reload, request, "HandleReloadConfigRequest")
        if response.status.error_code != 0:
            raise ClientError(f"{self.target} rejected the model config: "
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
