"""The steps' pod settings in the compiled file, against KFP's own SDK and the open-source
backend's handling of them.

What open-source KFP does with the file (read in kubeflow/pipelines, tags 2.2.0-2.4.1 and
master of 2026-08):
- the API server keeps the YAML document that parses as a PlatformSpec with a `kubernetes`
  platform, strictly (backend/src/apiserver/template/v2_template.go NewV2SpecTemplate,
  IsPlatformSpecWithKubernetesConfig: protojson.Unmarshal refuses unknown fields, and a refused
  document is silently not a platform spec);
- the argo compiler hands `deploymentSpec.executors[<executor label>]` to that executor's driver
  (backend/src/v2/compiler/visitor.go) and puts its `podMetadata` on the executor's pod template
  only (argocompiler/container.go extendPodMetadata);
- the driver adds to the step's pod what `DRIVER_2_4_READS` lists (driver.go
  extendPodSpecPatch and makeVolumeMountPatch in 2.2-2.4; driver/k8s.go today, which also reads
  the `*NameParameter` fields), the container spec's `env` and `resources` (driver.go
  initPodSpecPatch; memory as `%vG` before 2.4, the quantity string from 2.4).
"""
from __future__ import annotations

import json

import pytest
import yaml
from google.cloud.aiplatform.utils import yaml_utils
from google.protobuf import json_format
from kfp import compiler, dsl, kubernetes
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from ctpipe.pipeline.config import (
    ConfigError,
    KubernetesSettings,
    PipelineConfig,
    StepResources,
    build_config,
)
from ctpipe.pipeline.kubeflow import platform as kfp_platform
from ctpipe.pipeline.kubeflow.pipeline_file import read_pipeline_file
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config

ROOT = "minio://mlpipeline/v2/artifacts"
SCRATCH = "/minio/mlpipeline/v2/artifacts"
SECRETS = {"mlpipeline-minio-artifact": {"accesskey": "AWS_ACCESS_KEY_ID",
                                         "secretkey": "AWS_SECRET_ACCESS_KEY"}}
KUBERNETES = {"s3_endpoint": "http://minio-service.kubeflow:9000", "s3_verify_tls": False,
              "secret_env": SECRETS, "volumes": {"big-tipper-models": "/models"},
              "artifact_scratch_gib": {"Trainer": 20, "Evaluator": 12.5}}
SETTINGS = {"data_root": "s3://mlpipeline/taxi/spans", "serving_root": "/models",
            "step_resources": {"Trainer": {"cpu_request": 1, "cpu_limit": 2,
                                           "memory_limit_gib": 4}},
            "kubernetes": KUBERNETES}
# What the driver of KFP 2.2-2.4 applies of each KubernetesExecutorConfig field we write
# (driver.go extendPodSpecPatch, makeVolumeMountPatch; argocompiler/container.go
# extendPodMetadata); the `*NameParameter` twins are read from 2.5 on (driver/k8s.go).
DRIVER_2_4_READS = {
    "secretAsEnv": {"secretName", "keyToEnv"},
    "pvcMount": {"constant", "mountPath"},
    "genericEphemeralVolume": {"volumeName", "mountPath", "accessModes", "size",
                               "defaultStorageClass", "storageClassName", "metadata"},
    "podMetadata": {"labels", "annotations"},
}
NEWER_TWINS = {"secretAsEnv": ("secretNameParameter", "secretName"),
               "pvcMount": ("pvcNameParameter", "constant")}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("platform")
    (folder / "settings.yaml").write_text(yaml.safe_dump(SETTINGS))
    config = kubeflow_config(folder / "settings.yaml", ROOT)
    compile_pipeline(config, "img:1", folder / "pipeline.yaml")
    return folder / "pipeline.yaml"


def _documents(path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def _executor_configs(platform: dict) -> dict[str, dict]:
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_the_file_is_a_pipeline_spec_then_a_platform_spec_the_api_server_keeps(compiled):
    spec, platform = _documents(compiled)
    # Strict parsing, as the API server's protojson.Unmarshal.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert list(platform["platforms"]) == ["kubernetes"]
    labels = kfp_platform.task_executor_labels(spec)
    assert set(_executor_configs(platform)) == set(labels.values())
    assert set(labels.values()) <= set(spec["deploymentSpec"]["executors"])
    assert read_pipeline_file(compiled) == (spec, platform)


def test_every_field_is_one_the_driver_applies(compiled):
    _, platform = _documents(compiled)
    for label, config in _executor_configs(platform).items():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
        assert set(config) <= set(DRIVER_2_4_READS), label
        for field, entries in config.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                twin = NEWER_TWINS.get(field)
                if twin:
                    newer, older = twin
                    assert entry.pop(newer) == {"runtimeValue": {"constant": entry[older]}}
                assert set(entry) <= DRIVER_2_4_READS[field], (label, field)


def test_credentials_by_secret_name_and_endpoint_on_every_step(compiled):
    spec, platform = _documents(compiled)
    env = {"S3_ENDPOINT": "http://minio-service.kubeflow:9000",
           "AWS_ENDPOINT_URL": "http://minio-service.kubeflow:9000", "S3_USE_HTTPS": "0",
           "S3_VERIFY_SSL": "0", "AWS_REGION": "us-east-1"}
    for label, config in _executor_configs(platform).items():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == "mlpipeline-minio-artifact"
        assert {m["envVar"]: m["secretKey"] for m in secret["keyToEnv"]} == {
            "AWS_ACCESS_KEY_ID": "accesskey", "AWS_SECRET_ACCESS_KEY": "secretkey"}
        container = spec["deploymentSpec"]["executors"][label]["container"]
        assert {e["name"]: e["value"] for e in container["env"]} == env
        assert config["podMetadata"] == {"labels": dict([kfp_platform.STEP_LABEL])}


def test_the_models_volume_only_where_the_serving_folder_is_opened(compiled):
    spec, platform = _documents(compiled)
    configs = _executor_configs(platform)
    mounted = {task for task, label in kfp_platform.task_executor_labels(spec).items()
               if "pvcMount" in configs[label]}
    assert mounted == {"ServedModelSnapshot", "ServedModel", "Pusher"}
    (mount,) = configs["Pusher_executor"]["pvcMount"]
    assert (mount["constant"], mount["mountPath"]) == ("big-tipper-models", "/models")


def test_scratch_space_where_the_launcher_copies_this_roots_artifacts(compiled):
    spec, platform = _documents(compiled)
    configs = _executor_configs(platform)
    labels = kfp_platform.task_executor_labels(spec)
    with_scratch = {task: configs[label]["genericEphemeralVolume"]
                    for task, label in labels.items()
                    if "genericEphemeralVolume" in configs[label]}
    assert set(with_scratch) == {"Trainer", "Evaluator"}
    (evaluator,) = with_scratch["Evaluator"]
    assert evaluator == {"volumeName": "artifact-scratch", "mountPath": SCRATCH,
                         "accessModes": ["ReadWriteOnce"], "size": "12.5Gi",
                         "defaultStorageClass": True}


def test_resources_of_the_configured_step_only(compiled):
    spec, _ = _documents(compiled)
    executors = spec["deploymentSpec"]["executors"]
    labels = kfp_platform.task_executor_labels(spec)
    assert executors[labels["Trainer"]]["container"]["resources"] == {
        "cpuRequest": 1.0, "resourceCpuRequest": "1", "cpuLimit": 2.0, "resourceCpuLimit": "2",
        "memoryLimit": 4 * 2**30 / 1e9, "resourceMemoryLimit": "4Gi"}
    assert all("resources" not in executors[labels[task]]["container"]
               for task in labels if task != "Trainer")


def test_settings_are_written_as_kfp_and_kfp_kubernetes_write_them(tmp_path):
    """The same settings through kfp's DSL and kfp-kubernetes 1.5.0, compiled by kfp's own
    compiler: executor config, container resources and env are identical."""
    settings = KubernetesSettings.model_validate(KUBERNETES)
    env = kfp_platform.object_store_env(settings)

    @dsl.container_component
    def step():
        return dsl.ContainerSpec(image="img:1", command=["true"])

    @dsl.pipeline(name="kfp-kubernetes")
    def pipeline():
        task = step()
        kubernetes.add_pod_label(task, *kfp_platform.STEP_LABEL)
        kubernetes.use_secret_as_env(task, "mlpipeline-minio-artifact",
                                     SECRETS["mlpipeline-minio-artifact"])
        kubernetes.mount_pvc(task, "big-tipper-models", "/models")
        kubernetes.add_ephemeral_volume(task, "artifact-scratch", SCRATCH, ["ReadWriteOnce"],
                                        "20Gi")
        task.set_cpu_request("1").set_cpu_limit("2").set_memory_limit("4Gi")
        for variable in env:
            task.set_env_variable(variable["name"], variable["value"])

    compiler.Compiler().compile(pipeline, str(tmp_path / "kfp.yaml"))
    spec, platform = _documents(tmp_path / "kfp.yaml")
    theirs = _executor_configs(platform)["exec-step"]
    ours = kfp_platform.executor_config(settings, "Trainer", ["/models/big_tipper"], SCRATCH)
    assert ours == theirs
    container = spec["deploymentSpec"]["executors"]["exec-step"]["container"]
    resources = StepResources(cpu_request=1, cpu_limit=2, memory_limit_gib=4)
    assert kfp_platform.resource_spec(resources) == container["resources"]
    assert sorted(env, key=json.dumps) == sorted(container["env"], key=json.dumps)


def test_without_kubernetes_settings_one_document_vertex_reads(tmp_path):
    (tmp_path / "vertex.yaml").write_text(yaml.safe_dump({
        key: value for key, value in SETTINGS.items() if key != "kubernetes"}
        | {"serving_root": "gs://bucket/serving"}))
    compile_pipeline(kubeflow_config(tmp_path / "vertex.yaml", "gs://bucket/root"), "img:1",
                     tmp_path / "pipeline.yaml")
    # Vertex AI's own loader (google-cloud-aiplatform): one YAML document.
    spec = yaml_utils.load_yaml(str(tmp_path / "pipeline.yaml"))
    assert spec["pipelineInfo"]["name"] == "taxi-big-tipper"
    assert all("env" not in e["container"] for e in spec["deploymentSpec"]["executors"].values())
    assert read_pipeline_file(tmp_path / "pipeline.yaml")[1] is None


def _settings(**changes) -> KubernetesSettings:
    return KubernetesSettings.model_validate({**KUBERNETES, **changes})


def _config(settings: KubernetesSettings, root: str = ROOT, **changes) -> PipelineConfig:
    return build_config({**SETTINGS, "pipeline_root": root, **changes,
                         "kubernetes": settings.model_dump()})


@pytest.mark.parametrize("changes, message", [
    ({"volumes": {}}, "config: 'serving_root' /models: a path in the steps' own pods, lost "
                      "when they end. Mount a volume there"),
    ({"volumes": {"big-tipper-models": "/models", "spare": "/spare"}},
     "volume spare at /spare: no step's settings point into it"),
    ({"artifact_scratch_gib": {"Trainr": 5}},
     "'kubernetes.artifact_scratch_gib' names no step of the pipeline: Trainr; its steps: "),
])
def test_settings_that_would_not_work_on_a_cluster_are_refused(compiled, changes, message):
    spec, _ = _documents(compiled)
    with pytest.raises(ConfigError, match=message):
        kfp_platform.platform_spec(spec, _config(_settings(**changes)))


def test_pod_defaults_leave_the_pods_to_kubeflow_and_label_them(compiled):
    spec, _ = _documents(compiled)
    settings = KubernetesSettings(pod_defaults=True)
    platform = kfp_platform.platform_spec(spec, _config(settings))
    assert all(config == {"podMetadata": {"labels": dict([kfp_platform.STEP_LABEL])}}
               for config in _executor_configs(platform).values())
    assert kfp_platform.object_store_env(settings) == []
    with pytest.raises(ValueError, match="pod_defaults: the PodDefaults give"):
        KubernetesSettings(pod_defaults=True, secret_env=SECRETS)


def test_wrong_settings_are_named(compiled, tmp_path):
    spec, _ = _documents(compiled)
    with pytest.raises(ConfigError, match="'step_resources' names no step.*: Traner"):
        kfp_platform.apply_container_settings(spec, {"Traner": StepResources(cpu_limit=1)},
                                              None)
    with pytest.raises(ConfigError, match="artifact_scratch_gib' needs a pipeline root"):
        kfp_platform.platform_spec(spec, _config(_settings(), str(tmp_path / "root")))
    for bad in ({"volumes": {"models": "/minio/models"}}, {"volumes": {"Models": "/models"}},
                {"secret_env": {"s": {"key": "1BAD"}}}, {"s3_endpoint": "minio:9000"}):
        with pytest.raises(ValueError):
            _settings(**bad)
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(SETTINGS))
    with pytest.raises(ConfigError, match="needs a YAML file"):
        compile_pipeline(kubeflow_config(tmp_path / "k.yaml", ROOT), "img:1",
                         tmp_path / "pipeline.json")
