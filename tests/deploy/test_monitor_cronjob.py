"""deploy/monitor-cronjob.yaml parses, runs `ctpipe monitor` with flags it has, reads the model
volume TF Serving serves, and its alert rules name metrics the server exports."""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
import yaml

from ctpipe.cli import build_parser
from ctpipe.commands.monitor import EXIT_CROSSED
from ctpipe.common import features
from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
from ctpipe.serving.server.config_files import read_model_server_config
from ctpipe.serving.server.metrics import (
    EXAMPLES_CHECKED,
    FEATURE_MISSING,
    PREDICTION_NULL,
    PREDICTION_PROBABILITY,
)
from tests.deploy.manifests import DEPLOY, documents_by_kind


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return documents_by_kind("monitor-cronjob.yaml", 3)


@pytest.fixture(scope="module")
def pod(manifests) -> dict:
    return manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _mount_of(pod: dict, path: str) -> tuple[dict, dict]:
    """The volume mount holding `path`, and its volume."""
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"]
                if PurePosixPath(m["mountPath"]) in PurePosixPath(path).parents]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def test_the_job_runs_monitor_with_existing_flags_and_fails_on_alerts(manifests, pod):
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])  # unknown flags exit here

    assert args.command == "monitor" and args.handler.__module__ == "ctpipe.commands.monitor"
    assert all(arg.startswith("--") and "=" in arg for arg in container["args"][1:])
    assert args.model_name == DEFAULT_MODEL_NAME and args.workspace is None
    assert args.last >= 1000
    # Exit 3 (or 1) must fail the Job at once: no restarts, no retries.
    assert pod["restartPolicy"] == "Never" and EXIT_CROSSED != 0
    assert manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert manifests["CronJob"]["spec"]["concurrencyPolicy"] == "Forbid"


def test_it_reads_the_volumes_serving_writes_and_reads(manifests, pod, tmp_path):
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    serving = {doc["kind"]: doc for doc in
               yaml.safe_load_all((DEPLOY / "tf-serving.yaml").read_text())}
    serving_pod = serving["Deployment"]["spec"]["template"]["spec"]
    (serving_container,) = serving_pod["containers"]
    config_file = tmp_path / "models.config"
    config_file.write_text(serving["ConfigMap"]["data"]["models.config"])
    (entry,) = read_model_server_config(str(config_file)).model_config_list.config

    # The base path is where TF Serving's models.config points, on the same claim.
    assert entry.name == args.model_name and entry.base_path == args.model_base_path
    mount, volume = _mount_of(pod, args.model_base_path)
    serving_mount, serving_volume = _mount_of(serving_pod, args.model_base_path)
    assert mount["mountPath"] == serving_mount["mountPath"] and mount["readOnly"]
    assert volume["persistentVolumeClaim"]["claimName"] == \
        serving_volume["persistentVolumeClaim"]["claimName"]

    # The logs and the saved summary live on the claim this file declares.
    logs_mount, logs_volume = _mount_of(pod, args.logs)
    assert _mount_of(pod, args.save)[0] == logs_mount and not logs_mount.get("readOnly")
    assert logs_volume["persistentVolumeClaim"]["claimName"] == \
        manifests["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in manifests["PersistentVolumeClaim"]["spec"]["accessModes"]
    assert PurePosixPath(args.logs).name == DEFAULT_MODEL_NAME


def test_alert_rules_name_exported_metrics_and_model_features(manifests):
    exported = {f"{PREDICTION_PROBABILITY}_bucket", f"{PREDICTION_PROBABILITY}_count",
                f"{PREDICTION_PROBABILITY}_sum", f"{PREDICTION_NULL}_total",
                f"{EXAMPLES_CHECKED}_total", f"{FEATURE_MISSING}_total"}
    rules = [rule for group in manifests["PrometheusRule"]["spec"]["groups"]
             for rule in group["rules"]]
    expressions = " ".join(rule["expr"] for rule in rules)

    assert set(re.findall(r"ctpipe_[a-z_]+", expressions)) <= exported
    assert set(re.findall(r'model_name="([^"]+)"', expressions)) == {DEFAULT_MODEL_NAME}
    for names in re.findall(r'feature=~"([^"]+)"', expressions):
        assert set(names.split("|")) <= set(features.FEATURE_NAMES)
    assert any("big-tipper-monitor" in rule["expr"] for rule in rules)
