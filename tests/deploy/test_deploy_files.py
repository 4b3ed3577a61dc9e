"""The Kubernetes files for real TF Serving parse, and agree with the code's names, ports and
paths (taken from pipeline/config.py and the client, never repeated here)."""
from __future__ import annotations

import importlib.metadata
from pathlib import PurePosixPath

import pytest
import yaml
from google.protobuf import text_format

from ctpipe.pipeline.config import DEFAULT_MODEL_NAME, load_config
from ctpipe.pipeline.kubeflow.platform import STEP_LABEL
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config
from ctpipe.serving.client.grpc_client import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT

# monitoring_config.proto is not in the tensorflow-serving-api wheel; the server builds it.
from ctpipe.serving.server.config_files import MonitoringConfig, read_model_server_config
from tests.deploy.manifests import DEPLOY, documents_by_kind


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return documents_by_kind("tf-serving.yaml", 4)


@pytest.fixture(scope="module")
def container(manifests) -> dict:
    (serving,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return serving


def _flags(container: dict) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])


def _mounted_file(manifests, container, flag_value: str) -> str:
    """Text of the ConfigMap key that a flag's file path points at through the volume mount."""
    path = PurePosixPath(flag_value)
    (mount,) = [m for m in container["volumeMounts"]
                if PurePosixPath(m["mountPath"]) == path.parent]
    volumes = manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    return manifests["ConfigMap"]["data"][path.name]


def test_model_config_serves_what_the_pusher_writes(manifests, container, tmp_path):
    config_file = tmp_path / "models.config"
    config_file.write_text(_mounted_file(manifests, container,
                                         _flags(container)["model_config_file"]))
    config = read_model_server_config(str(config_file))
    (entry,) = config.model_config_list.config
    pipeline = load_config(DEPLOY / "pipeline-serving.yaml",
                           {"pipeline_root": "/root", "data_root": "/data"})
    assert entry.name == DEFAULT_MODEL_NAME == pipeline.model_name
    assert entry.base_path == pipeline.serving_model_dir
    # The model volume is mounted where the pipeline's serving_root is.
    (models_mount,) = [m for m in container["volumeMounts"]
                       if entry.base_path.startswith(m["mountPath"] + "/")]
    assert models_mount["mountPath"] == pipeline.serving_root
    claim = next(v for v in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]
                 if v["name"] == models_mount["name"])["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["PersistentVolumeClaim"]["metadata"]["name"]
    assert int(_flags(container)["model_config_file_poll_wait_seconds"]) > 0


def test_ports_probe_and_image(manifests, container):
    flags = _flags(container)
    assert int(flags["port"]) == DEFAULT_GRPC_PORT
    assert int(flags["rest_api_port"]) == DEFAULT_REST_PORT
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": DEFAULT_GRPC_PORT, "http": DEFAULT_REST_PORT}
    service_ports = {p["name"]: p["port"] for p in manifests["Service"]["spec"]["ports"]}
    assert service_ports == ports
    assert manifests["Service"]["spec"]["selector"] == \
        manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v1/models/{DEFAULT_MODEL_NAME}",
                     "port": DEFAULT_REST_PORT}
    # The image's TF Serving release matches the API protos the client is built with.
    assert container["image"] == \
        f"tensorflow/serving:{importlib.metadata.version('tensorflow-serving-api')}"


def test_monitoring_config_matches_the_scrape_annotation(manifests, container):
    text = _mounted_file(manifests, container, _flags(container)["monitoring_config_file"])
    annotations = manifests["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == DEFAULT_REST_PORT
    assert_monitoring_config(text, annotations["prometheus.io/path"])


def assert_monitoring_config(text: str, scrape_path: str) -> None:
    config = text_format.Parse(text, MonitoringConfig())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == scrape_path


# --- Kubeflow: the three places a pushed version can land --------------------------------

def _pod_defaults() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc["spec"]
            for doc in yaml.safe_load_all((DEPLOY / "kfp-pod-defaults.yaml").read_text())}


@pytest.mark.parametrize("name, root, serving", [
    ("kubeflow.yaml", "gs://bucket/root", "gs://"),
    ("kubeflow-minio.yaml", "minio://mlpipeline/v2/artifacts", "s3://"),
    ("kubeflow-volume.yaml", "minio://mlpipeline/v2/artifacts", "/models"),
    ("kubeflow-profile.yaml", "minio://mlpipeline/v2/artifacts", "/models"),
    ("kubeflow-s3.yaml", "s3://bucket/ctpipe/root", "s3://"),
])
def test_each_kubeflow_setting_file_is_a_valid_configuration(name, root, serving):
    config = kubeflow_config(DEPLOY / name, root)
    assert config.serving_root.startswith(serving)
    assert "--runner=FnApiRunner" in config.beam_args
    if root.startswith("minio://"):
        # What the steps open themselves goes through MinIO's S3 API.
        assert config.span_index_uri == "s3://mlpipeline/v2/artifacts/span-index"


@pytest.mark.parametrize("runner, endpoint", [
    ("dataflow", "--runner=DataflowRunner"),
    ("flink", "--job_endpoint=flink-jobserver:8099"),
    ("spark", "--job_endpoint=spark-jobserver:8099"),
])
def test_beam_runner_files_reach_every_beam_step_with_the_image_as_sdk_container(
        runner, endpoint, tmp_path):
    config = kubeflow_config([DEPLOY / "kubeflow.yaml", DEPLOY / "beam" / f"{runner}.yaml"],
                             "gs://bucket/root")
    assert endpoint in config.beam_args and "--runner=FnApiRunner" not in config.beam_args
    spec = compile_pipeline(config, "registry.example/ctpipe:1", tmp_path / "pipeline.json")
    for step in ("ExampleGen", "StatisticsGen", "SpanWindow", "Evaluator"):
        args = spec["deploymentSpec"]["executors"][f"{step}_executor"]["container"]["args"]
        assert endpoint in args, step
        assert "--sdk_container_image=registry.example/ctpipe:1" in args, step


def test_pod_defaults_select_the_steps_pods_only_and_carry_what_the_steps_read():
    defaults = _pod_defaults()
    for spec in defaults.values():
        # The label the compiled file puts on the executor pods' metadata only; not
        # pipelines.kubeflow.org/v2_component, which backend/src/v2/compiler/argocompiler/argo.go
        # (Compile: the Workflow's spec.podMetadata) puts on every pod, drivers included.
        assert spec["selector"] == {"matchLabels": dict([STEP_LABEL])}
    env = {item["name"] for item in defaults["ctpipe-minio"]["env"]}
    # tensorflow-io's S3 file system and Beam's (boto3) read these (common/storage.py).
    assert {"S3_ENDPOINT", "S3_USE_HTTPS", "AWS_ENDPOINT_URL", "AWS_REGION",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env


def test_the_models_volume_is_where_the_pusher_writes_and_tf_serving_reads(manifests):
    spec = _pod_defaults()["ctpipe-models-volume"]
    (mount,) = spec["volumeMounts"]
    (volume,) = spec["volumes"]
    claim = manifests["PersistentVolumeClaim"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "steps write while TF Serving reads"
    profile = kubeflow_config(DEPLOY / "kubeflow-profile.yaml", "minio://mlpipeline/v2/artifacts")
    assert profile.kubernetes.pod_defaults and mount["mountPath"] == profile.serving_root
    # Without PodDefaults, the compiled file mounts the same claim at the same place.
    config = kubeflow_config(DEPLOY / "kubeflow-volume.yaml", "minio://mlpipeline/v2/artifacts")
    assert config.kubernetes.volumes == {claim["metadata"]["name"]: config.serving_root}


def test_the_launcher_and_the_steps_open_s3_with_the_same_secret():
    """deploy/kfp-launcher-s3.yaml as KFP's launcher reads it: ConfigMap `kfp-launcher`, its
    `providers` with the JSON names of backend/src/v2/config/s3.go (S3ProviderDefault,
    S3Credentials, S3SecretRef)."""
    config_map = yaml.safe_load((DEPLOY / "kfp-launcher-s3.yaml").read_text())
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"] == "kfp-launcher"
    default = yaml.safe_load(config_map["data"]["providers"])["s3"]["default"]
    assert set(default) <= {"endpoint", "credentials", "region", "disableSSL", "forcePathStyle"}
    credentials = default["credentials"]
    assert set(credentials) <= {"fromEnv", "secretRef"} and credentials["fromEnv"] is False
    reference = credentials["secretRef"]
    assert set(reference) == {"secretName", "accessKeyKey", "secretKeyKey"}
    settings = kubeflow_config(DEPLOY / "kubeflow-s3.yaml", config_map["data"][
        "defaultPipelineRoot"]).kubernetes
    keys = settings.secret_env[reference["secretName"]]
    assert {reference["accessKeyKey"], reference["secretKeyKey"]} == set(keys)
    assert settings.s3_region == default["region"]
