"""The client against a real server on 127.0.0.1 (`ctpipe serve`'s in-process API, used as a
black box like TF Serving: only its gRPC port is talked to)."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tensorflow_serving.apis import predict_pb2

from ctpipe.common import features, policies
from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
from ctpipe.serving.client import version_labels
from ctpipe.serving.client.errors import ClientError
from ctpipe.serving.client.examples import rows_to_examples
from ctpipe.serving.client.grpc_client import PredictionClient, RetryPolicy, TlsConfig
from tests.serving.conftest import push_version

WORKTREE = Path(__file__).resolve().parents[3]
MODEL_NAME = DEFAULT_MODEL_NAME


def _ctpipe(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ctpipe.cli", *args], cwd=WORKTREE,
                          capture_output=True, text=True, timeout=60, check=check)


def _in_process(version_dir: Path, serialized: list[bytes]) -> np.ndarray:
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return signature(**{features.EXAMPLES_KEY: tf.constant(serialized)})[
        features.PREDICTION_KEY].numpy()


def _wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture()
def trips(taxi_rows) -> list[dict[str, str]]:
    _, rows = taxi_rows
    return rows[2000:2040]


@pytest.fixture()
def plain_server(start_server, saved_model_dir, tmp_path):
    """Serves saved_model_dir as version 1; returns (gRPC target, base path)."""
    base_path = tmp_path / MODEL_NAME
    push_version(saved_model_dir, base_path, 1)
    handle, _ = start_server(base_path)
    return f"127.0.0.1:{handle.port}", base_path


def test_predictions_equal_the_saved_model_run_in_process(plain_server, saved_model_dir, trips):
    target, _ = plain_server
    serialized = rows_to_examples(trips)
    with PredictionClient(target, MODEL_NAME) as client:
        prediction = client.predict(serialized)
        assert set(client.signature_inputs()) == {features.EXAMPLES_KEY}
        (status,) = client.model_status()
    assert (prediction.model_name, prediction.model_version) == (MODEL_NAME, 1)
    assert prediction.signature_name == "serving_default"
    np.testing.assert_allclose(prediction.probabilities, _in_process(saved_model_dir, serialized),
                               rtol=1e-5)
    assert (status.version, status.state) == (1, "AVAILABLE")


def test_the_client_never_loads_tensorflow(plain_server, trips):
    """In a fresh interpreter: import the client, call a server in another process (this one),
    unpack the metadata's Any, parse a model config; TensorFlow is still not loaded."""
    target, _ = plain_server
    code = f"""
import sys
from ctpipe.serving.client.examples import rows_to_examples
from ctpipe.serving.client.grpc_client import PredictionClient
with PredictionClient({target!r}, {MODEL_NAME!r}) as client:
    prediction = client.predict(rows_to_examples({trips[:3]!r}))
    assert len(prediction.probabilities) == 3 and prediction.model_version == 1, prediction
    assert [s.state for s in client.model_status()] == ["AVAILABLE"]
    assert list(client.signature_inputs()) == [{features.EXAMPLES_KEY!r}]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_serving"))
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=WORKTREE, timeout=60)


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused, as when a server is
    not up yet (and no other process can take the port meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield reserved.getsockname()[1]


def test_a_server_that_is_not_up_is_reported_after_bounded_retries():
    retry = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.05, multiplier=2.0)
    started = time.monotonic()
    with _closed_port() as port, PredictionClient(f"127.0.0.1:{port}", MODEL_NAME, timeout=5.0,
                                                  retry=retry) as client:
        with pytest.raises(ClientError, match=r"failed: UNAVAILABLE: .* \(retried as gRPC does, "
                                              r"at most 3 attempts\)") as error:
            client.predict([b""])
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 5, "bounded by the attempts, not the 5 s deadline"


class _FlakyPredict:
    """A gRPC server on 127.0.0.1 whose Predict answers UNAVAILABLE `failures` times, then a
    PredictResponse; it records the retry metadata gRPC sends with every attempt."""

    def __init__(self, failures: int):
        self.failures, self.attempts = failures, []
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.version.value = MODEL_NAME, 3
        response.outputs[features.PREDICTION_KEY].float_val.append(0.25)
        self._response = response.SerializeToString()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_registered_method_handlers(
            "tensorflow.serving.PredictionService",
            {"Predict": grpc.unary_unary_rpc_method_handler(self._predict)})
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _predict(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        self.attempts.append(dict(context.invocation_metadata()).get("grpc-previous-rpc-attempts"))
        if len(self.attempts) <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"busy ({len(self.attempts)})")
        return self._response


@pytest.mark.parametrize("failures, policy, answered, attempts", [
    (2, RetryPolicy(max_attempts=4), True, 3),    # retried twice, then answered
    (4, RetryPolicy(max_attempts=4), False, 4),   # every attempt UNAVAILABLE: gives up after 4
    (1, RetryPolicy(max_attempts=1), False, 1),   # retries off
])
def test_unavailable_answers_are_retried_by_grpc_up_to_max_attempts(failures, policy, answered,
                                                                    attempts):
    flaky = _FlakyPredict(failures)
    try:
        with PredictionClient(f"127.0.0.1:{flaky.port}", MODEL_NAME, retry=policy,
                              timeout=10) as client:
            if answered:
                prediction = client.predict([b""])
                assert (prediction.probabilities, prediction.model_version) == ([0.25], 3)
            else:
                with pytest.raises(ClientError, match=f"UNAVAILABLE: busy \\({attempts}\\)"):
                    client.predict([b""])
    finally:
        flaky.server.stop(grace=0)
    assert len(flaky.attempts) == attempts
    assert flaky.attempts == [None] + [str(n) for n in range(1, attempts)]


def test_retry_policy_stays_within_grpcs_limits():
    assert "retryPolicy" not in RetryPolicy(max_attempts=1).service_config()
    policy = json.loads(RetryPolicy().service_config())["methodConfig"][0]
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {name["service"] for name in policy["name"]} == {
        "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"}
    with pytest.raises(ValueError, match="gRPC's limit"):
        RetryPolicy(max_attempts=6)


def test_a_pushed_version_is_served_without_restart(plain_server, saved_model_dir, trips):
    target, base_path = plain_server
    serialized = rows_to_examples(trips)
    push_version(saved_model_dir, base_path, 2)
    with PredictionClient(target, MODEL_NAME) as client:
        _wait_for(lambda: client.predict(serialized).model_version == 2, "version 2 to be served")


# --- TLS (mutual) and version labels: one server with --ssl_config_file and --model_config_file


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def _self_signed(directory: Path, name: str) -> Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, valid for one day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Certificate]:
    """A server certificate, a client certificate and an unrelated one (a wrong CA)."""
    directory = tmp_path_factory.mktemp("tls")
    return {name: _self_signed(directory, name) for name in ("server", "client", "stranger")}


def _ssl_config(path: Path, server_cert, client_ca) -> Path:
    """TF Serving's SSLConfig text proto: PEM contents inline, clients must present a cert."""
    fields = {"server_key": server_cert.key.read_text(),
              "server_cert": server_cert.cert.read_text(),
              "custom_ca": client_ca.cert.read_text()}
    path.write_text("".join(f"{name}: {json.dumps(value)}\n" for name, value in fields.items())
                    + "client_verify: true\n")
    return path


@pytest.fixture()
def labelled_tls_server(start_server, saved_model_dir, certificates, tmp_path):
    """Versions 1 and 2 labelled stable/canary in a polled config file; mutual TLS."""
    base_path = tmp_path / MODEL_NAME
    for version in (1, 2):
        push_version(saved_model_dir, base_path, version)
    config_path = tmp_path / "models.config"
    version_labels.write_initial_config(config_path, MODEL_NAME, str(base_path),
                                        {policies.STABLE: 1, policies.CANARY: 2})
    ssl_config = _ssl_config(tmp_path / "ssl.config", certificates["server"],
                             certificates["client"])
    handle, _ = start_server(model_config_file=str(config_path),
                             model_config_file_poll_wait_seconds=1, ssl_config_file=str(ssl_config))
    tls = TlsConfig(root_certs=certificates["server"].cert, client_cert=certificates["client"].cert,
                    client_key=certificates["client"].key)
    return f"127.0.0.1:{handle.port}", config_path, tls


def _version_for(target: str, tls: TlsConfig, label: str, serialized) -> int:
    with PredictionClient(target, MODEL_NAME, tls=tls) as client:
        return client.predict(serialized, label=label).model_version


def test_mutual_tls_is_required_and_verified(labelled_tls_server, certificates, trips):
    target, _, tls = labelled_tls_server
    serialized = rows_to_examples(trips[:2])
    with PredictionClient(target, MODEL_NAME, tls=tls) as client:
        assert client.predict(serialized).model_version == 2
    once = RetryPolicy(max_attempts=1)
    for wrong in (None,  # plaintext
                  TlsConfig(root_certs=certificates["server"].cert),  # no client certificate
                  TlsConfig(root_certs=certificates["stranger"].cert,  # server not trusted
                            client_cert=certificates["client"].cert,
                            client_key=certificates["client"].key)):
        with PredictionClient(target, MODEL_NAME, tls=wrong, retry=once,
                              timeout=5) as client:
            with pytest.raises(ClientError, match="UNAVAILABLE"):
                client.predict(serialized)


def test_labels_move_and_roll_back_while_serving(labelled_tls_server, trips, certificates):
    target, config_path, tls = labelled_tls_server
    serialized = rows_to_examples(trips[:2])
    assert _version_for(target, tls, "stable", serialized) == 1
    assert _version_for(target, tls, "canary", serialized) == 2

    # Promote the canary by editing the file only: the server polls it.
    promoted = _ctpipe("label", "--model-config", str(config_path), "--model", MODEL_NAME,
                       "--label", "stable", "--version", "2")
    assert f"{MODEL_NAME}: label 'stable' 1 -> 2" in promoted.stdout
    _wait_for(lambda: _version_for(target, tls, "stable", serialized) == 2,
              "stable to follow the config file")

    # Roll back and tell the server at once (HandleReloadConfigRequest over TLS).
    rolled = _ctpipe("rollback", "--model-config", str(config_path), "--model", MODEL_NAME,
                     "--server", target,
                     "--tls-root-certs", str(certificates["server"].cert),
                     "--tls-client-cert", str(certificates["client"].cert),
                     "--tls-client-key", str(certificates["client"].key))
    assert "label 'stable' 2 -> 1" in rolled.stdout and "reloaded" in rolled.stdout
    assert _version_for(target, tls, "stable", serialized) == 1

    refused = _ctpipe("label", "--model-config", str(config_path), "--label", "stable",
                      "--version", "9", check=False)
    assert refused.returncode == 1 and "version 9 of 'big_tipper' not found" in refused.stderr
