"""`ctpipe gateway` in front of `ctpipe serve` (its own process, TF Serving's contract) on
127.0.0.1: the traffic policy, the canary fallback, rollbacks under load, shadow copies, the
prediction log and metrics, REST. Loads are bounded (a few thousand calls at most)."""
from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import csv
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Iterator

import grpc
import pytest
import requests

from ctpipe.common import features
from ctpipe.program import program
from ctpipe.rollout.thresholds import Thresholds
from ctpipe.rollout.verdict import analyze
from ctpipe.serving.client import protos, version_labels
from ctpipe.serving.client.errors import ClientError
from ctpipe.serving.client.grpc_client import PredictionClient
from ctpipe.serving.gateway.options import GatewayOptions
from ctpipe.serving.gateway.routing import key_point
from ctpipe.serving.gateway.server import GatewayHandle, start
from ctpipe.serving.prediction_log import read_logs, request_id
from ctpipe.serving.server.process import ServerProcess
from ctpipe.tracking import store as tracking_store
from tests.serving.conftest import MODEL_NAME, push_version
from tests.tracking.conftest import register_versions

DOOMED = "doomed"  # a second model, whose canary version is deleted mid-traffic
WORKTREE = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def store(tmp_path_factory, saved_model_dir, shifted_model_dir, slow_model_dir) -> Path:
    """Versions 1 and 2: our model; 3: shifted predictions; 4: two seconds per call. The
    second model has versions 1 and 2 of ours."""
    root = tmp_path_factory.mktemp("gateway")
    for version, model in ((1, saved_model_dir), (2, saved_model_dir), (3, shifted_model_dir),
                           (4, slow_model_dir)):
        push_version(model, root / MODEL_NAME, version)
    for version in (1, 2):
        push_version(saved_model_dir, root / DOOMED, version)
    return root


def _write_config(store: Path, labels: dict[str, dict[str, int]]) -> Path:
    """Both models, every version loaded, the given labels."""
    config = protos.ModelServerConfig()
    for model, versions in ((MODEL_NAME, [1, 2, 3, 4]), (DOOMED, [1, 2])):
        entry = config.model_config_list.config.add(name=model, base_path=str(store / model),
                                                    model_platform="tensorflow")
        entry.model_version_policy.specific.versions.extend(versions)
        for label, version in labels.get(model, {}).items():
            entry.version_labels[label] = version
    path = store / "models.config"
    version_labels.write_config(path, config)
    return path


@pytest.fixture(scope="module")
def backend(store, tmp_path_factory) -> Iterator[ServerProcess]:
    config = _write_config(store, {MODEL_NAME: {"stable": 1}, DOOMED: {"stable": 1}})
    log_path = tmp_path_factory.mktemp("logs") / "serve.log"
    with ServerProcess(program("serve"), [f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
                        "--file_system_poll_wait_seconds=1", "--rest_api_port=-1"],
                       log_path) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(backend, store) -> Iterator[GatewayHandle]:
    handle = start(GatewayOptions(
        backend=backend.target, backend_rest=f"127.0.0.1:{backend.rest_port}",
        model_config_file=str(store / "models.config"), port=0, rest_api_port=-1,
        model_config_file_poll_wait_seconds=0.2, canary_percent=10, shadow_max_in_flight=2,
        shadow_timeout_seconds=5, prediction_log_dir=str(store / "predictions")))
    yield handle
    handle.stop()


@pytest.fixture()
def configure(gateway, store):
    """Sets labels on both sides at once: the file, sent through the gateway as a
    HandleReloadConfigRequest (which the gateway applies too)."""
    def apply(labels: dict[str, dict[str, int]]) -> None:
        path = _write_config(store, labels)
        with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client:
            client.reload_config(version_labels.read_config(path))
    return apply


@pytest.fixture()
def client(gateway) -> Iterator[PredictionClient]:
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as gateway_client:
        yield gateway_client


@contextlib.contextmanager
def _keyed_predict(gateway: GatewayHandle) -> Iterator:
    """predict(examples, key) -> the version that answered, sending `x-route-key: key`."""
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                   request_serializer=protos.PredictRequest.SerializeToString,
                                   response_deserializer=protos.PredictResponse.FromString)

        def predict(examples: list[bytes], key: str) -> int:
            request = protos.PredictRequest()
            request.model_spec.name = MODEL_NAME
            tensor = request.inputs["examples"]
            tensor.dtype = protos.DT_STRING
            tensor.tensor_shape.dim.add().size = len(examples)
            tensor.string_val.extend(examples)
            return call(request, metadata=(("x-route-key", key),),
                        timeout=10).model_spec.version.value

        yield predict


def _under_load(gateway: GatewayHandle, examples: list[bytes], action, *, model: str = MODEL_NAME,
                clients: int = 4, seconds_after: float = 3.0) -> tuple[collections.Counter, list]:
    """Default-path requests from `clients` threads while `action()` runs, and for
    `seconds_after` more; (versions that answered, errors)."""
    versions, errors, stop = collections.Counter(), [], threading.Event()

    def send() -> None:
        with PredictionClient(f"127.0.0.1:{gateway.port}", model) as client:
            while not stop.is_set():
                try:
                    versions[client.predict(examples[:1]).model_version] += 1
                except ClientError as err:
                    errors.append(str(err))

    with futures.ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(send) for _ in range(clients)]
        time.sleep(0.5)
        action()
        time.sleep(seconds_after)
        stop.set()
        for done in running:
            done.result()
    return versions, errors


def test_default_traffic_goes_to_stable_and_pinned_requests_pass(configure, client,
                                                                  serialized_examples):
    configure({MODEL_NAME: {"stable": 2}, DOOMED: {"stable": 1}})
    assert {client.predict(serialized_examples[:2]).model_version for _ in range(20)} == {2}
    assert client.predict(serialized_examples[:2], version=1).model_version == 1
    assert client.predict(serialized_examples[:2], label="stable").model_version == 2
    with pytest.raises(ClientError, match="NOT_FOUND: Servable not found for request: "
                                          r"Specific\(big_tipper, 9\)"):
        client.predict(serialized_examples[:1], version=9)


def test_a_model_without_stable_is_refused_by_name(configure, client, serialized_examples):
    configure({MODEL_NAME: {"canary": 2}, DOOMED: {"stable": 1}})
    with pytest.raises(ClientError, match="FAILED_PRECONDITION: ctpipe gateway: model "
                                          "big_tipper has no 'stable' version label"):
        client.predict(serialized_examples[:1])
    assert client.predict(serialized_examples[:1], label="canary").model_version == 2


def test_canary_share_is_within_3_points_over_5000_requests_and_sticky(
        configure, gateway, serialized_examples):
    configure({MODEL_NAME: {"stable": 1, "canary": 2}, DOOMED: {"stable": 1}})
    keys = [f"trip-{n}" for n in range(5000)]

    def versions_of(chunk: list[str]) -> list[int]:
        with _keyed_predict(gateway) as predict:
            return [predict(serialized_examples[:1], key) for key in chunk]

    with futures.ThreadPoolExecutor(4) as pool:
        answered = [v for part in pool.map(versions_of, [keys[i::4] for i in range(4)])
                    for v in part]
    share = answered.count(2) / len(answered)
    assert abs(share - 0.10) <= 0.03, share
    # Sticky: a key's version is its hash's, every time.
    with _keyed_predict(gateway) as predict:
        for key in keys[:30]:
            expected = 2 if key_point(key) < 10 else 1
            assert {predict(serialized_examples[:1], key) for _ in range(3)} == {expected}


def test_shadow_answers_are_logged_never_returned_and_never_wait(configure, gateway,
                                                                  serialized_examples):
    configure({MODEL_NAME: {"stable": 1, "shadow": 3}, DOOMED: {"stable": 1}})
    forwarder = gateway.gateway.forwarder
    logger = forwarder.loggers[MODEL_NAME]
    sent = [serialized_examples[n:n + 2] for n in range(0, 40, 2)]
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client:
        client.predict(sent[0], version=3)  # its first call is slow (graph set-up)
        logger.flush()
        before = len(list(read_logs(logger.prefix)))
        answers = []
        for examples in sent:  # one at a time: at most 2 shadow copies may be out
            answers.append(client.predict(examples))
            asyncio.run_coroutine_threadsafe(forwarder.drain(10), gateway.loop).result(15)
    assert {a.model_version for a in answers} == {1}
    asyncio.run_coroutine_threadsafe(forwarder.drain(10), gateway.loop).result(15)
    logger.flush()
    records = list(read_logs(logger.prefix))[before:]
    by_version = collections.defaultdict(list)
    for record in records:
        by_version[record.log_metadata.model_spec.version.value].append(
            tuple(record.predict_log.request.inputs["examples"].string_val))
    # Every request's stable answer, and the shadow's (version 3, shifted) for the same ones.
    assert sorted(by_version[1]) == sorted(tuple(e) for e in sent)
    assert sorted(by_version[3]) == sorted(by_version[1])
    shadow_scores = [r.predict_log.response.outputs["probability"].float_val for r in records
                     if r.log_metadata.model_spec.version.value == 3]
    assert all(min(scores) >= 0.4 for scores in shadow_scores)


def test_a_slow_shadow_is_dropped_not_waited_for(configure, gateway, serialized_examples):
    configure({MODEL_NAME: {"stable": 1, "shadow": 4}, DOOMED: {"stable": 1}})
    metrics = gateway.gateway.metrics
    dropped_before = metrics.shadow_dropped.labels(MODEL_NAME)._value.get()
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client:
        for _ in range(10):
            started = time.perf_counter()
            assert client.predict(serialized_examples[:1]).model_version == 1
            # The shadow takes 2 s per call; the caller never waits for it.
            assert time.perf_counter() - started < 1.5
    # At most 2 copies in flight (shadow_max_in_flight): the others were dropped.
    assert metrics.shadow_dropped.labels(MODEL_NAME)._value.get() - dropped_before >= 7
    asyncio.run_coroutine_threadsafe(gateway.gateway.forwarder.drain(10),
                                     gateway.loop).result(15)


def test_the_canary_version_disappearing_fails_no_default_request(configure, gateway, store,
                                                                  serialized_examples):
    configure({MODEL_NAME: {"stable": 1}, DOOMED: {"stable": 1, "canary": 2}})
    fallbacks = gateway.gateway.metrics.canary_fallbacks.labels(DOOMED)

    def delete_canary_version() -> None:
        shutil.rmtree(store / DOOMED / "2")

    # A request id the canary's share takes: which side answers is its hash, every run.
    to_canary = next(f"to-canary-{n}" for n in range(1000) if key_point(f"to-canary-{n}") < 10)
    before = fallbacks._value.get()
    with PredictionClient(f"127.0.0.1:{gateway.port}", DOOMED) as client:
        client.predict(serialized_examples[:1], label="canary")  # its first call is slow
        assert client.predict(serialized_examples[:1], request_id=to_canary).model_version == 2
        versions, errors = _under_load(gateway, serialized_examples, delete_canary_version,
                                       model=DOOMED, seconds_after=4.0)
        assert errors == [] and versions[1] > 0
        assert fallbacks._value.get() > before  # routed to the canary, answered by stable
        assert client.predict(serialized_examples[:1], request_id=to_canary).model_version == 1


def test_a_rollback_under_load_fails_no_request(configure, gateway, store, serialized_examples):
    configure({MODEL_NAME: {"stable": 2}, DOOMED: {"stable": 1}})
    config = store / "models.config"
    versions, errors = _under_load(
        gateway, serialized_examples,
        lambda: version_labels.rollback(config, MODEL_NAME, version=1), seconds_after=4.0)
    assert errors == []
    assert versions[2] > 0 and versions[1] > 0  # both sides of the move answered
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client:
        assert client.predict(serialized_examples[:1]).model_version == 1


def test_rest_routes_like_grpc_and_metrics_hold_tf_serving_names_and_predictions(
        configure, gateway, serialized_examples):
    configure({MODEL_NAME: {"stable": 2}, DOOMED: {"stable": 1}})
    rest = f"http://127.0.0.1:{gateway.rest_port}"
    body = {"instances": [{"b64": base64.b64encode(e).decode()} for e in serialized_examples[:3]]}
    answer = requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", json=body, timeout=10)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
    assert len(answer.headers["x-request-id"]) == 32  # assigned by the gateway
    named = requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", json=body, timeout=10,
                          headers={"x-request-id": "rest-7"})
    assert named.headers["x-request-id"] == "rest-7"
    pinned = requests.post(f"{rest}/v1/models/{MODEL_NAME}/versions/9:predict", json=body,
                           timeout=10)
    assert pinned.status_code == 404 and "Specific(big_tipper, 9)" in pinned.json()["error"]
    status = requests.get(f"{rest}/v1/models/{MODEL_NAME}", timeout=10).json()
    assert {s["version"] for s in status["model_version_status"]} == {"1", "2", "3", "4"}
    text = requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=10).text
    for sample in (':tensorflow:serving:request_count{model_name="big_tipper",status="OK"}',
                   ':tensorflow:serving:request_latency_bucket{API="Predict",entrypoint="REST"',
                   'ctpipe_prediction_probability_count{model_name="big_tipper",model_version="2"}',
                   'ctpipe_examples_checked_total{model_name="big_tipper",model_version="2"}',
                   'ctpipe_gateway_requests_total{model_name="big_tipper",model_version="2",'
                   'route="stable",status="OK"}'):
        assert sample in text, sample


def test_the_gateway_never_imports_tensorflow():
    code = ("import sys; import ctpipe.cli, ctpipe.serving.gateway.server; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'tensorflow'], 'TF'")
    subprocess.run([sys.executable, "-c", code], cwd=WORKTREE, check=True, timeout=60)


def _traffic(gateway: GatewayHandle, serialized_examples: list[bytes], requests_count: int) -> None:
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client:
        for n in range(requests_count):
            start_at = (n * 8) % 592
            client.predict(serialized_examples[start_at:start_at + 8])


@pytest.fixture()
def own_gateway(backend, store, tmp_path) -> Iterator[GatewayHandle]:
    """A gateway of the test's own (same backend and config file), logging to an empty folder:
    a rollout analysis that reads only this test's traffic."""
    handle = start(GatewayOptions(
        backend=backend.target, model_config_file=str(store / "models.config"), port=0,
        model_config_file_poll_wait_seconds=0.2, canary_percent=10,
        prediction_log_dir=str(tmp_path / "predictions")))
    yield handle
    handle.stop()


def _labelled_traffic(gateway: GatewayHandle, serialized_examples: list[bytes], taxi_rows,
                      requests_count: int, prefix: str, path: Path) -> Path:
    """Default-path requests of 16 trips each, with request ids of our own (so which side
    answers is the ids' hash: the same every run); the outcomes as they arrive later, one
    row per trip: `request_id`, `example` (its position in the request), `big_tipper`."""
    _, rows = taxi_rows
    with PredictionClient(f"127.0.0.1:{gateway.port}", MODEL_NAME) as client, \
            path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "example", "big_tipper"])
        for n in range(requests_count):
            first = (n * 16) % 576
            answer = client.predict(serialized_examples[first:first + 16],
                                    request_id=f"{prefix}-{n}")
            assert answer.request_id == f"{prefix}-{n}"
            for position, row in enumerate(rows[first:first + 16]):
                writer.writerow([answer.request_id, position, features.is_big_tipper(
                    float(row["tips"] or 0), float(row["fare"] or 0))])
    return path


@pytest.mark.parametrize("canary, expected, exit_status, labels_after", [
    (2, "promote", 0, {"stable": 2}),  # the same model as stable
    (3, "rollback", 3, {"stable": 1}),  # probabilities moved up by 0.4
])
def test_rollout_analyze_promotes_an_equal_canary_and_rolls_back_a_shifted_one(
        configure, own_gateway, store, serialized_examples, taxi_rows, tmp_path, canary,
        expected, exit_status, labels_after):
    """Deterministic by design: the request ids decide the sides, the labels join on them
    (each side is scored on exactly the trips it answered), and the verdict's tests are
    confidence sequences at a 1 % false-rollback rate."""
    configure({MODEL_NAME: {"stable": 1, "canary": canary}, DOOMED: {"stable": 1}})
    # The registry of an MLflow store follows the labels (`--tracking`).
    tracking = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    registry = register_versions(tracking, store / MODEL_NAME, [1, 2, 3], tmp_path / "artifacts")
    mlflow = tracking_store.client(tracking)
    tracking_store.follow_labels(mlflow, MODEL_NAME, {"stable": 1, "canary": canary})
    own_gateway.gateway.router.reload()
    labels = _labelled_traffic(own_gateway, serialized_examples, taxi_rows, 800,
                               f"case{canary}", tmp_path / "labelled.csv")
    logger = own_gateway.gateway.forwarder.loggers[MODEL_NAME]
    logger.flush()
    config = store / "models.config"
    result = subprocess.run(
        [sys.executable, "-m", "ctpipe.cli", "rollout", "analyze", "--model-config", str(config),
         "--logs", logger.prefix, "--labels", str(labels), "--min-requests", "40",
         "--max-loss-increase", "0.1", "--apply", "--json", "--tracking", tracking],
        cwd=WORKTREE, capture_output=True, text=True, timeout=120)
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert (result.returncode, report["recommendation"]) == (exit_status, expected), \
        report["reasons"]
    assert report["candidate"]["version"] == canary and report["label_join"] == "request id"
    assert 40 <= report["candidate"]["requests"] < report["stable"]["requests"]
    # Every trip of the requests compared found its label, and only its own. The comparison
    # starts at the second (the log's timestamp_secs) of the canary's first answer, so stable's
    # answers before it may be left out when a second boundary falls between them.
    before_canary = next(n for n in range(800) if key_point(f"case{canary}-{n}") < 10)
    compared = report["candidate"]["requests"] + report["stable"]["requests"]
    assert 800 - before_canary <= compared <= 800
    assert report["labels_matched"] == 16 * compared
    assert report["candidate"]["labelled"] == 16 * report["candidate"]["requests"]
    loss = report["tests"]["loss"]
    if expected == "promote":
        assert report["prediction_distance"] < 0.05 and loss["upper"] < 0.1
    else:
        assert report["prediction_distance"] > 0.2 and loss["lower"] > 0
    entry = version_labels.model_entry(version_labels.read_config(config), MODEL_NAME)
    assert dict(entry.version_labels) == labels_after
    assert dict(mlflow.get_registered_model(MODEL_NAME).aliases) == {
        "champion": registry[labels_after["stable"]]}, report["tracking"]
    assert report["tracking"][-1] == (f"tracking: alias 'challenger' removed (was version "
                                      f"{registry[canary]})")


def test_rollout_analyze_joins_on_features_only_when_asked_and_says_so(
        configure, own_gateway, store, serialized_examples, taxi_rows, tmp_path):
    configure({MODEL_NAME: {"stable": 1, "canary": 2}, DOOMED: {"stable": 1}})
    own_gateway.gateway.router.reload()
    _labelled_traffic(own_gateway, serialized_examples, taxi_rows, 100, "features",
                      tmp_path / "ids.csv")
    logger = own_gateway.gateway.forwarder.loggers[MODEL_NAME]
    logger.flush()
    trips = tmp_path / "trips.csv"
    header, rows = taxi_rows

    with trips.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows[:600])
    command = [sys.executable, "-m", "ctpipe.cli", "rollout", "analyze", "--model-config",
               str(store / "models.config"), "--logs", logger.prefix, "--labels", str(trips),
               "--min-requests", "5"]
    refused = subprocess.run(command, cwd=WORKTREE, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"ctpipe: {trips} has no 'request_id' column: labels are joined to logged answers by "
        "the request id the gateway returned (x-request-id); for data without one, "
        "--join-on-features joins by feature values")
    joined = subprocess.run(command + ["--join-on-features"], cwd=WORKTREE, capture_output=True,
                            text=True, timeout=120)
    assert joined.returncode == 0, joined.stderr
    assert "labels joined by feature values" in joined.stdout
    assert "fallback --join-on-features: equal trips collide" in joined.stdout


def test_request_ids_are_returned_logged_and_assigned_when_missing(
        configure, own_gateway, serialized_examples):
    configure({MODEL_NAME: {"stable": 1}, DOOMED: {"stable": 1}})
    own_gateway.gateway.router.reload()
    with PredictionClient(f"127.0.0.1:{own_gateway.port}", MODEL_NAME) as client:
        mine = client.predict(serialized_examples[:2], request_id="trip-42")
        assigned = [client.predict(serialized_examples[:1]).request_id for _ in range(3)]
        with pytest.raises(ClientError, match="NOT_FOUND"):
            client.predict(serialized_examples[:1], version=9, request_id="lost-1")
    assert mine.request_id == "trip-42"
    assert len(set(assigned)) == 3 and all(len(a) == 32 for a in assigned)
    # An error answer carries its id too.
    with grpc.insecure_channel(f"127.0.0.1:{own_gateway.port}") as channel:
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                   request_serializer=protos.PredictRequest.SerializeToString,
                                   response_deserializer=protos.PredictResponse.FromString)
        request = protos.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.model_spec.version.value = 9
        with pytest.raises(grpc.RpcError) as failed:
            call(request, metadata=(("x-request-id", "lost-2"),), timeout=10)
    assert ("x-request-id", "lost-2") in tuple(failed.value.trailing_metadata())
    logger = own_gateway.gateway.forwarder.loggers[MODEL_NAME]
    logger.flush()

    logged = {request_id(r): list(r.predict_log.request.inputs["examples"].string_val)
              for r in read_logs(logger.prefix)}
    assert logged == {"trip-42": serialized_examples[:2],
                      **{a: serialized_examples[:1] for a in assigned}}


def test_rollout_figures_from_the_gateways_metrics(configure, gateway, store,
                                                   serialized_examples):
    configure({MODEL_NAME: {"stable": 1, "canary": 3}, DOOMED: {"stable": 1}})
    _traffic(gateway, serialized_examples, 300)
    url = f"http://localhost:{gateway.rest_port}/monitoring/prometheus/metrics"
    verdict = analyze(store / "models.config", MODEL_NAME, metrics=[url],
                      thresholds=Thresholds(min_requests=10))
    for figures in (verdict.stable, verdict.candidate):
        assert figures.requests >= 10 and figures.errors == 0
        assert 0 < figures.p99_seconds < 10 and figures.histogram is not None
    assert verdict.recommendation == "rollback"
    assert any("mean probability moved by" in reason for reason in verdict.reasons)


def test_ctpipe_gateway_runs_as_its_own_process(backend, store, configure, serialized_examples,
                                               tmp_path):
    configure({MODEL_NAME: {"stable": 2}, DOOMED: {"stable": 1}})
    with ServerProcess(program("gateway"), [f"--backend={backend.target}",
                        f"--model_config_file={store / 'models.config'}"],
                       tmp_path / "gateway.log") as process:
        with PredictionClient(process.target, MODEL_NAME) as client:
            assert client.predict(serialized_examples[:1]).model_version == 2
    assert process.stop() == 0  # SIGTERM: a clean stop
    missing = subprocess.run([sys.executable, "-m", "ctpipe.cli", "gateway", "--backend=x:1",
                              f"--model_config_file={tmp_path / 'nope.config'}"], cwd=WORKTREE,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("ctpipe: gateway failed to start: model config file not "
                                      f"found: {tmp_path / 'nope.config'}")
