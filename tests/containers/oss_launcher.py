"""Open-source KFP's driver and launcher, played on this machine for a compiled pipeline file:
every task in the pipeline image under podman, artifacts in an S3 API (moto's server on
loopback in the tests), ML Metadata and the cache kept in memory.

kfp.local cannot show what a cluster does to a step: it mounts one local folder and hands over
local paths, caches nothing and applies no platform config. What a cluster does is read here in
kubeflow/pipelines (tag 2.4.1; "HEAD" is master of 2026-08) and done the same way; each
behaviour cites the function it comes from. Not from our code: where this module and
pipeline/kubeflow/entrypoint.py or pipeline/kubeflow/platform.py agree, it is because both follow the
backend.

The driver (backend/src/v2/driver/driver.go Container):
- input parameters from constants, the run's runtime parameters (defaults filled by
  argocompiler/argo.go Compile) and upstream output parameters (resolveInputs);
- input artifacts from ML Metadata: `name` is the MLMD id, `metadata` the custom properties,
  and the type an empty instance schema (metadata/client.go GetOutputArtifactsByExecutionId
  sets Schema "", OutputArtifact.ToRuntimeArtifact);
- output URIs `<root>/<pipeline>/<run id>/<task>/<uuid>/<output key>` (metadata/client.go
  GetPipeline, GenerateOutputURI; driver.go provisionOutputs), the output file
  /tmp/kfp_outputs/output_metadata.json (component/launcher_v2.go OutputMetadataFilepath);
- the cache: a task whose caching is enabled and whose fingerprint an earlier successful
  execution recorded is not run; its outputs are that execution's artifacts (getFingerPrint,
  cacheutils.GenerateCacheKey: input artifact ids, input parameter values, output artifact
  specs without URIs, output parameter types, command, arguments and image;
  reuseCachedOutputs);
- the pod (initPodSpecPatch, extendPodSpecPatch): the container spec's env; Secrets as env;
  PVCs mounted at their paths; generic ephemeral volumes; pod labels (argocompiler/container.go
  extendPodMetadata). KFP_POD_NAME and KFP_POD_UID are set in every executor's container
  (argocompiler/common.go commonEnvs).

The launcher (backend/src/v2/component/launcher_v2.go Execute, executeV2, execute):
- downloads each input artifact's objects to `LocalPathForURI(uri)` (`/minio/`, `/s3/`,
  `/gcs/` + bucket and key) by listing the key as a prefix without a trailing slash and writing
  each object at its path relative to that key (objectstore/object_store.go DownloadBlob, 2.2
  to 2.16): a sibling `<key>_run/...` lands next to the input at its own mirror path; an input
  with no objects gets no folder. (2.17 and HEAD skip keys not under `<key>/`.)
- creates the parents of the outputs' local paths (prepareOutputFolders), replaces `{{$}}`
  with the ExecutorInput carrying parameter defaults (addDefaultParams, getPlaceholders), runs
  the command;
- reads the output file, strictly as an ExecutorOutput (getExecutorOutputFile; protojson
  refuses unknown fields), merges each output's URI and metadata into the provisioned artifact
  (mergeRuntimeArtifacts) and uploads the local path of the merged URI by walking it
  (UploadBlob): a URI it cannot map to a local path is not uploaded (a warning), a missing
  local path neither, an empty folder uploads nothing;
- records each output in ML Metadata with its metadata as custom properties (numbers as
  doubles, booleans as ints), `display_name` and `store_session_info`
  (metadata/client.go RecordArtifact, converter.go StructValueToMLMDValue);
- after success, records the cache entry (Execute: CreateExecutionCache).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import posixpath
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import boto3
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from moto.server import ThreadedMotoServer

from containers import podman

OUTPUT_METADATA_FILE = "/tmp/kfp_outputs/output_metadata.json"
MIRRORS = {"gs": "gcs", "minio": "minio", "s3": "s3"}
# A standalone KFP namespace with MinIO, as `standalone_settings` compiles for: the Secret the
# steps' credentials come from, and the claims of the data and the served models.
MINIO_SECRET = "ct-minio"
CLAIMS = {"taxi-data": "/data", "big-tipper-models": "/models"}


class LauncherError(RuntimeError):
    """A task failed the way it would fail on the cluster; the message says where."""


def local_path_for_uri(uri: str) -> str | None:
    """launcher_v2.go localPathForURI: `gs://` -> /gcs/, `minio://` -> /minio/, `s3://` -> /s3/;
    None for any other scheme."""
    scheme, separator, rest = uri.partition("://")
    return f"/{MIRRORS[scheme]}/{rest}" if separator and scheme in MIRRORS else None


@dataclasses.dataclass
class RecordedArtifact:
    """An output artifact as ML Metadata keeps it (metadata/client.go RecordArtifact)."""

    id: int
    uri: str
    custom_properties: dict[str, Any]

    def runtime_artifact(self) -> dict[str, Any]:
        """As the driver hands it to a consumer (OutputArtifact.ToRuntimeArtifact)."""
        return {"name": str(self.id), "uri": self.uri, "type": {"instanceSchema": ""},
                "metadata": dict(self.custom_properties)}


@dataclasses.dataclass
class TaskRun:
    """What happened to one task: cached or run, what moved in and out of the object store."""

    name: str
    cached: bool
    seconds: float
    outputs: dict[str, RecordedArtifact]
    # Input key -> files the download wrote, relative to the mirror root (`minio/bucket/...`).
    downloaded: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # Output key -> object keys uploaded.
    uploaded: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    executor_input: dict[str, Any] = dataclasses.field(default_factory=dict)
    executor_output: dict[str, Any] = dataclasses.field(default_factory=dict)
    log: str = ""


@dataclasses.dataclass
class Pod:
    """The podman options of a step's pod, and its volumes: where a path inside the container
    lives on this machine (the launcher downloads and uploads inside the pod, so through
    whichever volume holds the path)."""

    options: list[str]
    mounts: dict[str, Path]  # container path -> host folder

    def host_path(self, path: str) -> Path:
        mount = max((m for m in self.mounts if path == m or path.startswith(m + "/")), key=len)
        return self.mounts[mount] / posixpath.relpath(path, mount)


class ObjectStore:
    """The pipeline root's bucket, through boto3 (the launcher uses gocloud's blob API)."""

    def __init__(self, client, bucket: str):
        self.client, self.bucket = client, bucket

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclasses.dataclass
class Cluster:
    """What outlives a run: the object store, ML Metadata's artifacts, the cache entries (the
    API server's task table), the Secrets and the claims (host folders) of the namespace."""

    store: ObjectStore
    image: str
    secrets: dict[str, dict[str, str]]
    claims: dict[str, Path]
    work: Path
    artifacts: dict[int, RecordedArtifact] = dataclasses.field(default_factory=dict)
    cache: dict[str, tuple[dict[str, RecordedArtifact], dict[str, Any]]] = dataclasses.field(
        default_factory=dict)

    def record(self, uri: str, custom_properties: dict[str, Any]) -> RecordedArtifact:
        artifact = RecordedArtifact(len(self.artifacts) + 1, uri, custom_properties)
        self.artifacts[artifact.id] = artifact
        return artifact


def _mlmd_value(value: Any) -> Any:
    """converter.go StructValueToMLMDValue: numbers become doubles, booleans ints; strings
    stay; lists and structs stay structures."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return float(value)
    return value


def fingerprint(executor_input: dict[str, Any], component: dict[str, Any],
                container: dict[str, Any]) -> str:
    """cacheutils.GenerateCacheKey's fields, hashed (GenerateFingerPrint hashes their JSON;
    equal keys give equal fingerprints here as there)."""
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    key = {
        "inputArtifactNames": {name: [a["name"] for a in artifacts["artifacts"]]
                               for name, artifacts in inputs.get("artifacts", {}).items()},
        "inputParameterValues": inputs.get("parameterValues", {}),
        "outputArtifactsSpec": {
            name: {"name": a[0].get("name", ""), "type": a[0]["type"],
                   "metadata": a[0].get("metadata")}
            for name, a in ((n, v["artifacts"]) for n, v in outputs.get("artifacts", {}).items())
            if a},
        "outputParametersSpec": {
            name: spec["parameterType"] for name, spec in component.get(
                "outputDefinitions", {}).get("parameters", {}).items()},
        "containerSpec": {"image": container["image"],
                          "cmdArgs": [*container.get("command", []), *container.get("args", [])]},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class PipelineRun:
    """One run of a compiled pipeline file on the `cluster`."""

    def __init__(self, cluster: Cluster, spec: dict[str, Any], platform: dict[str, Any] | None,
                 pipeline_root: str, parameters: dict[str, Any] | None = None,
                 done: dict[str, TaskRun] | None = None):
        """`done`: tasks of an earlier run whose outputs this run's tasks take (`run_task`)."""
        self.cluster, self.spec = cluster, spec
        self.executor_configs = (platform or {}).get("platforms", {}).get("kubernetes", {}).get(
            "deploymentSpec", {}).get("executors", {})
        self.run_id = str(uuid.uuid4())
        # GetPipeline: the run's root is <pipeline root>/<pipeline name>/<run id>.
        self.root = f"{pipeline_root.rstrip('/')}/{spec['pipelineInfo']['name']}/{self.run_id}"
        self.bucket_uri = "/".join(pipeline_root.split("/", 3)[:3]) + "/"
        defaults = {name: definition["defaultValue"] for name, definition in spec["root"].get(
            "inputDefinitions", {}).get("parameters", {}).items() if "defaultValue" in definition}
        self.parameters = {**defaults, **(parameters or {})}
        self.tasks: dict[str, TaskRun] = dict(done or {})
        self.output_parameters: dict[str, dict[str, Any]] = {
            name: task.executor_output.get("parameterValues", {})
            for name, task in self.tasks.items()}

    def run(self) -> dict[str, TaskRun]:
        """Every task in an order its dependencies allow; the first failure stops the run."""
        pending = dict(self.spec["root"]["dag"]["tasks"])
        while pending:
            ready = sorted(name for name, task in pending.items()
                           if set(task.get("dependentTasks", [])) <= set(self.tasks))
            if not ready:
                raise LauncherError(f"no task can start: {sorted(pending)}")
            for name in ready:
                pending.pop(name)
                self.run_task(name)
        return self.tasks

    def run_task(self, name: str) -> TaskRun:
        """One task, its upstream tasks done."""
        self.tasks[name] = self._task(name, self.spec["root"]["dag"]["tasks"][name])
        return self.tasks[name]

    # --- the driver ------------------------------------------------------------------------

    def _input_parameter(self, name: str, spec: dict[str, Any]) -> Any:
        if "runtimeValue" in spec:
            return spec["runtimeValue"]["constant"]
        if "componentInputParameter" in spec:
            return self.parameters[spec["componentInputParameter"]]
        producer = spec["taskOutputParameter"]
        try:
            return self.output_parameters[producer["producerTask"]][
                producer["outputParameterKey"]]
        except KeyError:
            raise LauncherError(f"input parameter {name}: no output "
                                f"{producer['outputParameterKey']} of task "
                                f"{producer['producerTask']}") from None

    def _executor_input(self, name: str, task: dict[str, Any],
                        component: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = {"parameterValues": {
            key: self._input_parameter(key, value)
            for key, value in task.get("inputs", {}).get("parameters", {}).items()}}
        artifacts = {}
        for key, value in task.get("inputs", {}).get("artifacts", {}).items():
            producer = value["taskOutputArtifact"]
            artifact = self.tasks[producer["producerTask"]].outputs[
                producer["outputArtifactKey"]]
            artifacts[key] = {"artifacts": [artifact.runtime_artifact()]}
        if artifacts:
            inputs["artifacts"] = artifacts
        salt = str(uuid.uuid4())
        outputs = {"artifacts": {
            key: {"artifacts": [{"uri": f"{self.root}/{name}/{salt}/{key}",
                                 "type": definition["artifactType"],
                                 **({"metadata": definition["metadata"]}
                                    if "metadata" in definition else {})}]}
            for key, definition in component.get("outputDefinitions", {}).get(
                "artifacts", {}).items()},
            "parameters": {key: {"outputFile": f"/tmp/kfp/outputs/{key}"}
                           for key in component.get("outputDefinitions", {}).get(
                               "parameters", {})},
            "outputFile": OUTPUT_METADATA_FILE}
        return {"inputs": inputs, "outputs": outputs}

    def _task(self, name: str, task: dict[str, Any]) -> TaskRun:
        component = self.spec["components"][task["componentRef"]["name"]]
        label = component["executorLabel"]
        container = self.spec["deploymentSpec"]["executors"][label]["container"]
        executor_input = self._executor_input(name, task, component)
        key = None
        if task.get("cachingOptions", {}).get("enableCache"):
            key = fingerprint(executor_input, component, container)
            if key in self.cluster.cache:
                outputs, parameters = self.cluster.cache[key]
                self.output_parameters[name] = parameters
                return TaskRun(name, True, 0.0, outputs, executor_input=executor_input)
        start = time.perf_counter()
        run = self._launch(name, executor_input, component, container,
                           self.executor_configs.get(label, {}))
        run.seconds = time.perf_counter() - start
        if key:
            self.cluster.cache[key] = (run.outputs, self.output_parameters[name])
        return run

    # --- the launcher ----------------------------------------------------------------------

    def _key(self, uri: str) -> str:
        """objectstore Config.KeyFromURI: the key under the default bucket."""
        if not uri.startswith(self.bucket_uri):
            raise LauncherError(f"{uri} is not in the pipeline root's bucket {self.bucket_uri}")
        return uri[len(self.bucket_uri):]

    def _download(self, executor_input: dict[str, Any], pod: Pod) -> dict[str, list[str]]:
        downloaded = {}
        for key, artifact_list in executor_input["inputs"].get("artifacts", {}).items():
            uri = artifact_list["artifacts"][0]["uri"]
            local = local_path_for_uri(uri)
            if local is None:
                continue
            prefix, written = self._key(uri), []
            for object_key in self.cluster.store.keys(prefix):
                target = posixpath.normpath(posixpath.join(local, posixpath.relpath(
                    object_key, prefix)))
                path = pod.host_path(target)
                path.parent.mkdir(parents=True, exist_ok=True)
                self.cluster.store.client.download_file(self.cluster.store.bucket, object_key,
                                                        str(path))
                written.append(target.lstrip("/"))
            downloaded[key] = written
        return downloaded

    def _upload(self, local: Path, key: str) -> list[str]:
        if not local.exists():
            return []  # "Local filepath does not exist": a warning only
        if local.is_file():
            self.cluster.store.client.upload_file(str(local), self.cluster.store.bucket, key)
            return [key]
        return [uploaded for child in sorted(local.iterdir())
                for uploaded in self._upload(child, f"{key}/{child.name}")]

    def _pod(self, config: dict[str, Any], container: dict[str, Any], work: Path) -> Pod:
        """What the driver puts in the pod spec, as podman options and volumes: the launcher's
        emptyDir folders (/gcs, /s3, /minio; argocompiler/container.go, KFP 2.3+), claims,
        generic ephemeral volumes."""
        options = ["--env", f"KFP_POD_NAME={work.name}", "--env", f"KFP_POD_UID={uuid.uuid4()}"]
        for variable in container.get("env", []):
            options += ["--env", f"{variable['name']}={variable['value']}"]
        for secret in config.get("secretAsEnv", []):
            values = self.cluster.secrets.get(secret["secretName"])
            if values is None:
                raise LauncherError(f"secret {secret['secretName']} not found")
            for mapping in secret["keyToEnv"]:
                options += ["--env", f"{mapping['envVar']}={values[mapping['secretKey']]}"]
        mounts = {f"/{name}": work / "emptydir" / name for name in MIRRORS.values()}
        for claim in config.get("pvcMount", []):
            mounts[claim["mountPath"]] = self.cluster.claims[claim["constant"]]
        for volume in config.get("genericEphemeralVolume", []):
            mounts[volume["mountPath"]] = work / "ephemeral" / volume["volumeName"]
        for target, source in mounts.items():
            source.mkdir(parents=True, exist_ok=True)
            options += ["--volume", f"{source}:{target}"]
        for label, value in config.get("podMetadata", {}).get("labels", {}).items():
            options += ["--label", f"{label}={value}"]
        return Pod(options, mounts)

    def _launch(self, name: str, executor_input: dict[str, Any], component: dict[str, Any],
                container: dict[str, Any], config: dict[str, Any]) -> TaskRun:
        work = self.cluster.work / f"{self.run_id[:8]}-{name}"
        pod = self._pod(config, container, work)
        downloaded = self._download(executor_input, pod)
        for artifact_list in executor_input["outputs"]["artifacts"].values():
            local = local_path_for_uri(artifact_list["artifacts"][0]["uri"])
            pod.host_path(local).parent.mkdir(parents=True, exist_ok=True)
        with_defaults = json.loads(json.dumps(executor_input))
        for key, definition in component.get("inputDefinitions", {}).get(
                "parameters", {}).items():
            if "defaultValue" in definition:
                with_defaults["inputs"]["parameterValues"].setdefault(key,
                                                                      definition["defaultValue"])
        placeholder = json_format.MessageToJson(json_format.ParseDict(
            with_defaults, pipeline_spec_pb2.ExecutorInput()), indent=None)
        command = [part.replace("{{$}}", placeholder)
                   for part in (*container.get("command", []), *container.get("args", []))]
        engine, container_name = podman.podman(), f"kfp-{self.run_id[:8]}-{name.lower()}"
        started = subprocess.run(
            [engine, "run", "--name", container_name, "--network=host",
             *pod.options, container["image"], *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log = started.stdout
        (work / "log.txt").write_text(log)
        try:
            if started.returncode != 0:
                raise LauncherError(f"task {name} exited with {started.returncode}:\n"
                                    f"{log[-3000:]}")
            output_file = work / "output_metadata.json"
            copied = subprocess.run([engine, "cp", f"{container_name}:{OUTPUT_METADATA_FILE}",
                                     str(output_file)], capture_output=True, text=True)
            text = output_file.read_text() if copied.returncode == 0 else "{}"
        finally:
            subprocess.run([engine, "rm", "--force", container_name], capture_output=True)
        try:
            executor_output = json_format.MessageToDict(json_format.Parse(
                text, pipeline_spec_pb2.ExecutorOutput()))
        except json_format.ParseError as error:
            raise LauncherError(f"task {name}: output metadata is no ExecutorOutput: "
                                f"{error}") from None
        self.output_parameters[name] = dict(executor_output.get("parameterValues", {}))
        run = TaskRun(name, False, 0.0, {}, downloaded=downloaded,
                      executor_input=executor_input, executor_output=executor_output, log=log)
        for key, artifact_list in executor_input["outputs"]["artifacts"].items():
            artifact = json.loads(json.dumps(artifact_list["artifacts"][0]))
            produced = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
            if produced:  # mergeRuntimeArtifacts
                artifact["uri"] = produced[0].get("uri") or artifact["uri"]
                artifact.setdefault("metadata", {}).update(produced[0].get("metadata", {}))
            local = local_path_for_uri(artifact["uri"])
            run.uploaded[key] = ([] if local is None else
                                 self._upload(pod.host_path(local), self._key(artifact["uri"])))
            properties = {k: _mlmd_value(v) for k, v in artifact.get("metadata", {}).items()}
            properties.setdefault("display_name", key)
            properties.setdefault("store_session_info", json.dumps(
                {"Provider": artifact["uri"].split("://")[0]}))
            run.outputs[key] = self.cluster.record(artifact["uri"], properties)
        return run



@contextlib.contextmanager
def s3_api() -> Iterator[dict[str, Any]]:
    """A real S3 API on loopback (moto's server): its `endpoint`, a boto3 `client`, and the
    `environment` both TensorFlow's (tensorflow-io) and Beam's (boto3) S3 file systems read."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        environment = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        yield {"endpoint": endpoint, "environment": environment, "client": client}
    finally:
        server.stop()


def standalone_settings(endpoint: str) -> dict[str, Any]:
    """Pipeline settings for `standalone_cluster`: data and models on its claims, the steps'
    own s3:// locations through `endpoint` with the Secret's credentials."""
    return {"data_root": CLAIMS["taxi-data"], "serving_root": CLAIMS["big-tipper-models"],
            "kubernetes": {"s3_endpoint": endpoint, "s3_verify_tls": False,
                           "secret_env": {MINIO_SECRET: {"accesskey": "AWS_ACCESS_KEY_ID",
                                                         "secretkey": "AWS_SECRET_ACCESS_KEY"}},
                           "volumes": {claim: path for claim, path in CLAIMS.items()}}}


def standalone_cluster(work: Path, image: str, client, bucket: str) -> Cluster:
    """A namespace of standalone KFP with MinIO (the pipeline root's `bucket` in the S3 API of
    `client`, its Secret, empty claims under `work`)."""
    client.create_bucket(Bucket=bucket)
    claims = {claim: work / "claims" / claim for claim in CLAIMS}
    for folder in claims.values():
        folder.mkdir(parents=True)
    return Cluster(store=ObjectStore(client, bucket), image=image,
                   secrets={MINIO_SECRET: {"accesskey": "test", "secretkey": "test"}},
                   claims=claims, work=work / "pods")
