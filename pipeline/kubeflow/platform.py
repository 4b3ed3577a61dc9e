"""What the steps' pods need beyond their commands, written into the compiled pipeline file the
way KFP's own SDK (kfp 2.13 and kfp-kubernetes 1.5.0) writes it, so that a plain open-source KFP
2.x install applies it: no Kubeflow PodDefault admission webhook is involved.

Two places, both read by open-source KFP's driver when it makes a step's pod:
- the PipelineSpec's container spec of each executor: `resources` (CPU and memory requests and
  limits) and `env` (the S3 endpoint, not secret), which the driver turns into the main
  container's resources and environment (backend/src/v2/driver/driver.go initPodSpecPatch in
  2.2-2.4) and Vertex AI reads too;
- the Kubernetes platform spec, a second YAML document of the file (kfp's compiler,
  `write_pipeline_spec_to_file`): per executor label one kfp-kubernetes
  `KubernetesExecutorConfig`. The API server picks it out of the uploaded file
  (backend/src/apiserver/template/v2_template.go NewV2SpecTemplate), the argo compiler hands
  each executor's config to its driver and puts `podMetadata` on the executor's pod only
  (backend/src/v2/compiler/visitor.go, argocompiler/container.go extendPodMetadata), and the
  driver adds `secretAsEnv`, `pvcMount` and `genericEphemeralVolume` to the pod
  (driver.go extendPodSpecPatch in 2.2-2.4, driver/k8s.go today). The driver of 2.2-2.4 reads
  a Secret's and a claim's name from the fields kfp-kubernetes 1.5.0 still writes beside the
  newer `*NameParameter` ones (`secretName`, `constant`), so both are written, as it does.

Which steps get what: Secrets as env, the S3 endpoint and the `ctpipe/pipeline-step` label on
every step; a volume only on the steps whose settings point into it (`step_locations`), so a
models volume is not mounted on pods that do not write models. With `pod_defaults` (full
Kubeflow) only the label: Kubeflow's PodDefaults select the steps' pods by it, and since it is
set through the executor's pod metadata, driver pods never carry it.
"""
from __future__ import annotations

import posixpath
from typing import Any, Iterable

from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as pb
from kfp.pipeline_spec import pipeline_spec_pb2

from ctpipe.common import storage
from ctpipe.pipeline.config import ConfigError, KubernetesSettings, PipelineConfig, StepResources

# The label every step's pod carries (deploy/kfp-pod-defaults.yaml selects on it). One value for
# every step: up to KFP 2.4 at least, all container tasks share one executor template, whose pod
# metadata comes from the first task compiled (argocompiler/container.go
# addContainerExecutorTemplate returns the cached "system-container-executor"), so a per-step
# value would be wrong on every other step's pod.
STEP_LABEL = ("ctpipe/pipeline-step", "true")
SCRATCH_VOLUME = "artifact-scratch"
# kfp's compiler writes memory as a float in G (10^9 bytes) for drivers before 2.4 (which read
# `%vG`) beside the exact quantity, as `GiB * 2**30 / 10**9` (kfp/compiler/compiler_utils.py
# _memory_to_float).
GIB, G = 2**30, 10**9


def task_executor_labels(spec: dict[str, Any]) -> dict[str, str]:
    """Task name (the step id) -> executor label, through the task's component."""
    return {task: spec["components"][definition["componentRef"]["name"]]["executorLabel"]
            for task, definition in spec["root"]["dag"]["tasks"].items()}


def step_locations(spec: dict[str, Any], task: str) -> list[str]:
    """What a step's compiled parameters point at: constants, and the defaults of the runtime
    parameters it takes."""
    defaults = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    values = []
    for parameter in spec["root"]["dag"]["tasks"][task].get("inputs", {}).get(
            "parameters", {}).values():
        if "runtimeValue" in parameter:
            values.append(parameter["runtimeValue"]["constant"])
        elif "componentInputParameter" in parameter:
            values.append(defaults[parameter["componentInputParameter"]].get("defaultValue"))
    return storage.locations_in(values)


def _under(location: str, mount_path: str) -> bool:
    return location == mount_path or location.startswith(mount_path + "/")


def _check_steps(kind: str, names: Iterable[str], tasks: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(tasks))
    if unknown:
        raise ConfigError(f"config: '{kind}' names no step of the pipeline: "
                          f"{', '.join(unknown)}; its steps: {', '.join(sorted(tasks))}")


def resource_spec(resources: StepResources) -> dict[str, Any]:
    """A PipelineContainerSpec.ResourceSpec as kfp's compiler writes `set_cpu_limit('2')`,
    `set_memory_limit('4Gi')` ...: the exact quantity (read by the driver from 2.4) and the
    float (read before: cores, and memory in G)."""
    message = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    for kind in ("request", "limit"):
        cpu = getattr(resources, f"cpu_{kind}")
        if cpu:
            setattr(message, f"cpu_{kind}", cpu)
            setattr(message, f"resource_cpu_{kind}", f"{cpu:g}")
        memory = getattr(resources, f"memory_{kind}_gib")
        if memory:
            setattr(message, f"memory_{kind}", memory * GIB / G)
            setattr(message, f"resource_memory_{kind}", f"{memory:g}Gi")
    return json_format.MessageToDict(message)


def object_store_env(settings: KubernetesSettings) -> list[dict[str, str]]:
    """The S3 endpoint as tensorflow-io's S3 file system (S3_*) and boto3 (AWS_ENDPOINT_URL,
    Beam's S3 file system) read it; the credentials come as Secrets (`secret_env`)."""
    if settings.pod_defaults:
        return []
    env = {"AWS_REGION": settings.s3_region} if settings.s3_region else {}
    if settings.s3_endpoint:
        env.update(S3_ENDPOINT=settings.s3_endpoint, AWS_ENDPOINT_URL=settings.s3_endpoint,
                   S3_USE_HTTPS=str(int(settings.s3_endpoint.startswith("https://"))),
                   S3_VERIFY_SSL=str(int(settings.s3_verify_tls)))
    return [{"name": name, "value": value} for name, value in sorted(env.items())]


def apply_container_settings(spec: dict[str, Any], step_resources: dict[str, StepResources],
                             kubernetes: KubernetesSettings | None) -> None:
    """Resources of the configured steps and the object store's environment of every step,
    into the executors' container specs."""
    labels = task_executor_labels(spec)
    _check_steps("step_resources", step_resources, labels)
    executors = spec["deploymentSpec"]["executors"]
    for task, resources in step_resources.items():
        executors[labels[task]]["container"]["resources"] = resource_spec(resources)
    env = object_store_env(kubernetes) if kubernetes else []
    if env:
        for label in labels.values():
            executors[label]["container"]["env"] = env


def executor_config(settings: KubernetesSettings, task: str, locations: list[str],
                    scratch_path: str | None) -> dict[str, Any]:
    """One step's KubernetesExecutorConfig, as kfp-kubernetes's use_secret_as_env, mount_pvc,
    add_ephemeral_volume and add_pod_label write it; with pod_defaults only the label."""
    config = pb.KubernetesExecutorConfig()
    key, value = STEP_LABEL
    config.pod_metadata.labels[key] = value
    for secret, keys in settings.secret_env.items():
        entry = config.secret_as_env.add(
            key_to_env=[pb.SecretAsEnv.SecretKeyToEnvMap(secret_key=key, env_var=env)
                        for key, env in keys.items()])
        entry.secret_name_parameter.runtime_value.constant.string_value = secret
        entry.secret_name = secret
    for claim, mount_path in settings.volumes.items():
        if any(_under(location, mount_path) for location in locations):
            mount = config.pvc_mount.add(mount_path=mount_path)
            mount.pvc_name_parameter.runtime_value.constant.string_value = claim
            mount.constant = claim
    if task in settings.artifact_scratch_gib:
        storage_class = settings.scratch_storage_class or None
        config.generic_ephemeral_volume.add(
            volume_name=SCRATCH_VOLUME, mount_path=scratch_path, access_modes=["ReadWriteOnce"],
            size=f"{settings.artifact_scratch_gib[task]:g}Gi",
            default_storage_class=storage_class is None, storage_class_name=storage_class)
    return json_format.MessageToDict(config)


def _check_volumes(config: PipelineConfig, locations: dict[str, list[str]]) -> None:
    """Every local path the steps open lies on a volume, and every volume is some step's:
    otherwise a step would write into its own pod's disk, lost when the pod ends."""
    settings = config.kubernetes
    if settings.pod_defaults:
        return
    unmounted = [f"'{name}' {path}" for name, path in config.opened_locations().items()
                 if path.startswith("/") and not any(
                     _under(path, mount) for mount in settings.volumes.values())]
    if unmounted:
        raise ConfigError(
            f"config: {', '.join(unmounted)}: a path in the steps' own pods, lost when they "
            "end. Mount a volume there (kubernetes.volumes: {CLAIM: PATH}), use a bucket, or "
            "set kubernetes.pod_defaults where Kubeflow PodDefaults mount it")
    for claim, mount in settings.volumes.items():
        if not any(_under(path, mount) for paths in locations.values() for path in paths):
            raise ConfigError(f"config: volume {claim} at {mount}: no step's settings point "
                              "into it")


def platform_spec(spec: dict[str, Any], config: PipelineConfig) -> dict[str, Any]:
    """The file's Kubernetes platform spec (a PlatformSpec), one executor config per step.

    The scratch volume is mounted where the launcher keeps the copies of this pipeline root's
    artifacts (its LocalPathForURI: `/minio/<bucket>/<key>`, backend/src/v2/component/
    launcher_v2.go), beneath the launcher's own emptyDir at `/minio` (KFP 2.3+); container
    runtimes mount the shallower path first."""
    settings = config.kubernetes
    labels = task_executor_labels(spec)
    _check_steps("kubernetes.artifact_scratch_gib", settings.artifact_scratch_gib, labels)
    scratch_path = storage.local_mirror(config.pipeline_root.split("?")[0])
    if settings.artifact_scratch_gib and scratch_path is None:
        raise ConfigError(f"config: 'kubernetes.artifact_scratch_gib' needs a pipeline root "
                          f"KFP's launcher copies artifacts from (gs://, s3://, minio://), got "
                          f"{config.pipeline_root}")
    locations = {task: step_locations(spec, task) for task in labels}
    _check_volumes(config, locations)
    platform = pipeline_spec_pb2.PlatformSpec()
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    for task, label in labels.items():
        executors[label].update(executor_config(
            settings, task, locations[task], scratch_path and posixpath.normpath(scratch_path)))
    return json_format.MessageToDict(platform)
