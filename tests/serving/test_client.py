"""The client against a real server on 127.0.0.1 (`ctpipe serve`, a black box like TF Serving)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from models import features
from serving import model_config
from serving.client import (PredictionClient, RetryPolicy, ServingError, TlsConfig,
                            rows_to_examples)
from serving.local_server import free_port, running_server
from pipeline.config import PipelineConfig

WORKTREE = Path(__file__).resolve().parents[2]
MODEL_NAME = PipelineConfig().model_name


def _ctpipe(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ctpipe.cli", *args], cwd=WORKTREE,
                          capture_output=True, text=True, timeout=60, check=check)


def _in_process(version_dir: Path, serialized: list[bytes]) -> np.ndarray:
    import tensorflow as tf

    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return signature(**{features.EXAMPLES_KEY: tf.constant(serialized)})[
        features.PREDICTION_KEY].numpy()


def _wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def plain_server(exported_models, tmp_path_factory):
    base_path = tmp_path_factory.mktemp("plain") / MODEL_NAME
    exported_models.install(base_path, 1)
    with running_server(MODEL_NAME, base_path, log_dir=base_path.parent) as server:
        yield server, base_path


def test_predictions_equal_the_saved_model_run_in_process(plain_server, exported_models):
    server, _ = plain_server
    serialized = rows_to_examples(exported_models.rows)
    with PredictionClient(server.target, MODEL_NAME) as client:
        prediction = client.predict(serialized)
        assert set(client.signature_inputs()) == {features.EXAMPLES_KEY}
        (status,) = client.model_status()
    assert (prediction.model_name, prediction.model_version) == (MODEL_NAME, 1)
    assert prediction.signature_name == "serving_default"
    np.testing.assert_allclose(prediction.probabilities,
                               _in_process(exported_models.version_dir(1), serialized), rtol=1e-5)
    assert (status.version, status.state) == (1, "AVAILABLE")


def test_ctpipe_predict_prints_the_served_version(plain_server, exported_models, tmp_path,
                                                  csv_writer, taxi_rows):
    server, _ = plain_server
    header, _ = taxi_rows
    trips = csv_writer(tmp_path / "trips.csv", header, exported_models.rows[:4])
    answer = _ctpipe("predict", "--server", server.target, "--model", MODEL_NAME,
                     "--csv", str(trips))
    lines = answer.stdout.splitlines()
    assert lines[0].startswith(f"{MODEL_NAME} version 1 answered (latest, 4 examples")
    expected = _in_process(exported_models.version_dir(1),
                           rows_to_examples(exported_models.rows[:4]))
    assert [float(line.split("\t")[1]) for line in lines[1:]] == pytest.approx(expected, abs=1e-4)

    json_trips = tmp_path / "trips.json"
    json_trips.write_text(json.dumps([{"fare": 8.25, "payment_type": "Cash"}]))
    assert "version 1 answered" in _ctpipe("predict", "--server", server.target,
                                           "--json", str(json_trips)).stdout

    missing = _ctpipe("predict", "--server", server.target, "--version", "7",
                      "--csv", str(trips), check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"ctpipe: Predict({MODEL_NAME}, version 7) on {server.target} failed: NOT_FOUND: "
        f"Servable not found for request: Specific({MODEL_NAME}, 7)")


def test_unavailable_is_retried_with_bounded_backoff():
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    retry = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.05, multiplier=2.0)
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with PredictionClient(target, MODEL_NAME, timeout=2.0, retry=retry, sleep=sleep) as client:
        with pytest.raises(ServingError, match=r"failed after 3 attempts: UNAVAILABLE") as error:
            client.predict([b""])
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    assert waits == [0.05, 0.1]
    assert time.monotonic() - started < 10


def test_a_pushed_version_is_served_without_restart(plain_server, exported_models):
    server, base_path = plain_server
    serialized = rows_to_examples(exported_models.rows)
    exported_models.install(base_path, 2)
    with PredictionClient(server.target, MODEL_NAME) as client:
        _wait_for(lambda: client.predict(serialized).model_version == 2, "version 2 to be served")
        prediction = client.predict(serialized)
    np.testing.assert_allclose(prediction.probabilities,
                               _in_process(exported_models.version_dir(2), serialized), rtol=1e-5)
    assert server.process.poll() is None


# --- TLS (mutual) and version labels: one server with --ssl_config_file and --model_config_file


def _ssl_config(path: Path, server_cert, client_ca) -> Path:
    """TF Serving's SSLConfig text proto: PEM contents inline, clients must present a cert."""
    fields = {"server_key": server_cert.key.read_text(), "server_cert": server_cert.cert.read_text(),
              "custom_ca": client_ca.cert.read_text()}
    path.write_text("".join(f"{name}: {json.dumps(value)}\n" for name, value in fields.items())
                    + "client_verify: true\n")
    return path


@pytest.fixture(scope="module")
def labelled_tls_server(exported_models, certificates, tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    base_path = root / MODEL_NAME
    for version in (1, 2):
        exported_models.install(base_path, version)
    config_path = root / "models.config"
    model_config.write_initial_config(config_path, MODEL_NAME, str(base_path),
                                      {model_config.STABLE: 1, model_config.CANARY: 2})
    ssl_config = _ssl_config(root / "ssl.config", certificates["server"], certificates["client"])
    flags = [f"--model_config_file={config_path}", "--model_config_file_poll_wait_seconds=1",
             f"--ssl_config_file={ssl_config}"]
    tls = TlsConfig(root_certs=certificates["server"].cert, client_cert=certificates["client"].cert,
                    client_key=certificates["client"].key)
    with running_server(MODEL_NAME, None, extra_flags=flags, log_dir=root, tls=tls) as server:
        yield server, config_path, tls


def _version_for(target: str, tls: TlsConfig, label: str, serialized) -> int:
    with PredictionClient(target, MODEL_NAME, tls=tls) as client:
        return client.predict(serialized, label=label).model_version


def test_mutual_tls_is_required_and_verified(labelled_tls_server, certificates, exported_models):
    server, _, tls = labelled_tls_server
    serialized = rows_to_examples(exported_models.rows[:2])
    with PredictionClient(server.target, MODEL_NAME, tls=tls) as client:
        assert client.predict(serialized).model_version == 2
    once = RetryPolicy(max_attempts=1)
    for wrong in (None,  # plaintext
                  TlsConfig(root_certs=certificates["server"].cert),  # no client certificate
                  TlsConfig(root_certs=certificates["stranger"].cert,  # server not trusted
                            client_cert=certificates["client"].cert,
                            client_key=certificates["client"].key)):
        with PredictionClient(server.target, MODEL_NAME, tls=wrong, retry=once,
                              timeout=5) as client:
            with pytest.raises(ServingError, match="UNAVAILABLE"):
                client.predict(serialized)


def test_labels_move_and_roll_back_while_serving(labelled_tls_server, exported_models,
                                                 certificates):
    server, config_path, tls = labelled_tls_server
    serialized = rows_to_examples(exported_models.rows[:2])
    assert _version_for(server.target, tls, "stable", serialized) == 1
    assert _version_for(server.target, tls, "canary", serialized) == 2

    # Promote the canary by editing the file only: the server polls it.
    promoted = _ctpipe("label", "--model-config", str(config_path), "--model", MODEL_NAME,
                       "--label", "stable", "--version", "2")
    assert f"{MODEL_NAME}: label 'stable' 1 -> 2" in promoted.stdout
    _wait_for(lambda: _version_for(server.target, tls, "stable", serialized) == 2,
              "stable to follow the config file")

    # Roll back and tell the server at once (HandleReloadConfigRequest over TLS).
    rolled = _ctpipe("rollback", "--model-config", str(config_path), "--model", MODEL_NAME,
                     "--server", server.target,
                     "--tls-root-certs", str(certificates["server"].cert),
                     "--tls-client-cert", str(certificates["client"].cert),
                     "--tls-client-key", str(certificates["client"].key))
    assert "label 'stable' 2 -> 1" in rolled.stdout and "reloaded" in rolled.stdout
    assert _version_for(server.target, tls, "stable", serialized) == 1

    refused = _ctpipe("label", "--model-config", str(config_path), "--label", "stable",
                      "--version", "9", check=False)
    assert refused.returncode == 1 and "version 9 of 'big_tipper' not found" in refused.stderr
