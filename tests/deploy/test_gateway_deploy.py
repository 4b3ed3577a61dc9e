"""The gateway deployment and the rollout CronJob parse, and their flags, ports, paths and
names agree with each other and with the code (each command line goes through the real
parser of the program it starts)."""
from __future__ import annotations

import importlib.metadata
import urllib.parse
from pathlib import PurePosixPath

import pytest
import yaml

from ctpipe.cli import build_parser
from ctpipe.pipeline.config import DEFAULT_MODEL_NAME, load_config
from ctpipe.serving.client.grpc_client import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT
from ctpipe.serving.server.config_files import read_model_server_config
from ctpipe.serving.server.flags import parse_flags
from tests.deploy.manifests import DEPLOY
from tests.deploy.test_deploy_files import assert_monitoring_config


def _documents(name: str) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc
            for doc in yaml.safe_load_all((DEPLOY / name).read_text())}


@pytest.fixture(scope="module")
def serving() -> dict[tuple[str, str], dict]:
    return _documents("serving-gateway.yaml")


@pytest.fixture(scope="module")
def pod(serving) -> dict:
    return serving[("Deployment", "big-tipper-gateway")]["spec"]["template"]["spec"]


def _container(pod: dict, name: str) -> dict:
    (found,) = [c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == name]
    return found


def _gateway_args(container: dict):
    args = [a.replace("$(POD_NAME)", "pod-1") for a in container["args"]]
    return build_parser().parse_args([*container["command"][1:], *args])


def _mount(container: dict, path: str) -> dict:
    (mount,) = [m for m in container["volumeMounts"]
                if PurePosixPath(path).is_relative_to(m["mountPath"])]
    return mount


def _seed_text(serving, pod, container: dict, path: str) -> str:
    mount = _mount(container, path)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = serving[("ConfigMap", volume["configMap"]["name"])]
    return config_map["data"][PurePosixPath(path).name]


def test_the_gateway_fronts_tf_serving_on_loopback(serving, pod):
    gateway = _gateway_args(_container(pod, "gateway"))
    tf_serving = parse_flags(_container(pod, "tensorflow-serving")["args"])
    assert gateway.backend == f"127.0.0.1:{tf_serving.port}"
    assert gateway.backend_rest == f"127.0.0.1:{tf_serving.rest_api_port}"
    assert (gateway.port, gateway.rest_api_port) == (DEFAULT_GRPC_PORT, DEFAULT_REST_PORT)
    assert gateway.bind_address == "0.0.0.0"
    service = serving[("Service", "big-tipper-serving")]["spec"]
    ports = {p["name"]: p["containerPort"] for p in _container(pod, "gateway")["ports"]}
    assert {p["name"]: p["port"] for p in service["ports"]} == ports == {
        "grpc": DEFAULT_GRPC_PORT, "http": DEFAULT_REST_PORT}
    labels = serving[("Deployment", "big-tipper-gateway")]["spec"]["template"]["metadata"]
    assert service["selector"] == labels["labels"]
    assert labels["annotations"]["prometheus.io/path"] == gateway.monitoring_path
    assert _container(pod, "tensorflow-serving")["image"] == \
        f"tensorflow/serving:{importlib.metadata.version('tensorflow-serving-api')}"


def test_both_follow_one_model_config_on_the_model_volume_seeded_once(serving, pod, tmp_path):
    gateway = _gateway_args(_container(pod, "gateway"))
    tf_serving = parse_flags(_container(pod, "tensorflow-serving")["args"])
    assert gateway.model_config_file == tf_serving.model_config_file == "/models/models.config"
    assert tf_serving.model_config_file_poll_wait_seconds > 0
    for name in ("gateway", "tensorflow-serving", "seed-model-config"):
        mount = _mount(_container(pod, name), tf_serving.model_config_file)
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == "big-tipper-models"
    seed = _container(pod, "seed-model-config")
    assert not _mount(seed, tf_serving.model_config_file).get("readOnly")
    assert f"cp /seed/models.config {tf_serving.model_config_file}" in seed["command"][-1]
    config_file = tmp_path / "models.config"
    config_file.write_text(_seed_text(serving, pod, seed, "/seed/models.config"))
    (entry,) = read_model_server_config(str(config_file)).model_config_list.config
    pipeline = load_config(DEPLOY / "pipeline-serving.yaml",
                           {"pipeline_root": "/root", "data_root": "/data"})
    assert entry.name == DEFAULT_MODEL_NAME == pipeline.model_name
    assert entry.base_path == pipeline.serving_model_dir
    assert_monitoring_config(_seed_text(serving, pod, _container(pod, "tensorflow-serving"),
                                        tf_serving.monitoring_config_file),
                             "/monitoring/prometheus/metrics")


def test_the_cronjob_reads_what_the_gateways_write(serving, pod):
    cronjob = _documents("rollout-cronjob.yaml")[("CronJob", "big-tipper-rollout-analysis")]
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job_pod["containers"]
    args = build_parser().parse_args([*container["command"][1:], *container["args"]])
    gateway = _gateway_args(_container(pod, "gateway"))
    # Cumulative looks (metrics since the pods started): one sequential test over all runs.
    assert args.apply and args.window_seconds == 0
    assert str(args.model_config) == gateway.model_config_file
    # --logs: every pod's folder of the log volume, the model's prefix in each.
    log_dir = PurePosixPath(gateway.prediction_log_dir)  # /logs/<pod>
    assert PurePosixPath(args.logs).match(str(log_dir.parent / "*" / args.model))
    assert PurePosixPath(args.logs).parent.parent == log_dir.parent
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in job_pod["volumes"]}
    assert claims[_mount(container, args.logs.replace("*", "x"))["name"]] == \
        "big-tipper-prediction-logs"
    assert not _mount(container, str(args.model_config)).get("readOnly")  # --apply writes
    # --metrics: the headless Service of the gateway pods, on their metrics port and path.
    (url,) = args.metrics
    parts = urllib.parse.urlsplit(url)
    headless = serving[("Service", parts.hostname)]["spec"]
    assert headless["clusterIP"] == "None" and headless["selector"] == {"app": "big-tipper-gateway"}
    assert parts.port == gateway.rest_api_port and parts.path == gateway.monitoring_path
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
