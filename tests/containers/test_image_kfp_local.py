"""The pipeline image under KFP's local orchestrator (kfp.local, DockerRunner on podman).

- the image holds exactly the locked environment and imports the project without a network;
- a two-task pipeline compiled by kfp's own compiler: the project imports inside a task, and an
  artifact passes from one task to the next through the mounted pipeline root;
- a failing task fails the run, and the task after it does not run;
- a pipeline file compiled by TFX's KubeflowV2DagRunner (the kind the project ships) runs too;
- settings a task reads from its environment come with a derived image, and a task reaches a
  service on the host.

The tasks here follow TFX's v2 entrypoint contract: they receive the ExecutorInput (`{{$}}`) and
write an ExecutorOutput listing their output artifacts; kfp.local takes task outputs only from
that file (see containers/kfp_local.py).
"""
# No `from __future__ import annotations`: kfp reads the components' annotations as types.

import http.server
import json
import re
import subprocess
import threading
from pathlib import Path

import docker
import pytest
from kfp import compiler, dsl
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as runner

from containers import podman

pytestmark = pytest.mark.containers

REPO = Path(__file__).resolve().parents[2]

# One script for every task: argv = [ExecutorInput JSON, mode, modules...].
TASK = r"""
import importlib, json, os, sys

executor_input, mode, modules = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
outputs = executor_input["outputs"]
if mode == "fail":
    sys.exit("failing on purpose")
if mode == "probe":
    content = {"modules": {name: importlib.import_module(name).__file__ for name in modules},
               "python": sys.executable, "uid": os.getuid(),
               "type": outputs["artifacts"]["report"]["artifacts"][0]["type"]}
else:  # check: the upstream report is readable here and every module came from the venv
    given = executor_input["inputs"]["artifacts"]["report"]["artifacts"][0]
    upstream = given["uri"]
    with open(upstream) as handle:
        report = json.load(handle)
    outside = [f for f in report["modules"].values() if not f.startswith(sys.prefix + "/lib/")]
    if outside or not report["modules"]:
        sys.exit(f"modules not from {sys.prefix}: {outside or 'none reported'}")
    content = {"upstream": upstream, "checked": sorted(report["modules"]),
               "upstream_type": given["type"]}
produced = {}
for name, artifacts in outputs.get("artifacts", {}).items():
    uri = artifacts["artifacts"][0]["uri"]
    os.makedirs(os.path.dirname(uri), exist_ok=True)
    with open(uri, "w") as handle:
        json.dump(content, handle)
    produced[name] = {"artifacts": [{"name": name, "uri": uri, "metadata": {"mode": mode}}]}
os.makedirs(os.path.dirname(outputs["outputFile"]), exist_ok=True)
with open(outputs["outputFile"], "w") as handle:
    json.dump({"artifacts": produced}, handle)
"""

# The curated schema as the image installs it (package data of `schemas`).
IMAGE_SCHEMA = "/opt/venv/lib/python3.11/site-packages/ctpipe/schemas/schema.pbtxt"
PROJECT_MODULES = ["tfx", "tensorflow_data_validation", "ctpipe.models.trainer",
                   "ctpipe.components.validation_gate.component"]


def _pipelines(image: str):
    """(artifact pipeline, failing pipeline), compiled by kfp's own compiler for `image`."""
    def command(mode: str, *modules: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image=image, command=["python", "-c", TASK],
                                 args=[dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER, mode,
                                       *modules])

    @dsl.container_component
    def probe(report: dsl.Output[dsl.Artifact]):
        return command("probe", *PROJECT_MODULES)

    @dsl.container_component
    def probe_nothing(report: dsl.Output[dsl.Artifact]):
        return command("probe", "json")

    @dsl.container_component
    def check(report: dsl.Input[dsl.Artifact], summary: dsl.Output[dsl.Artifact]):
        return command("check")

    @dsl.container_component
    def fail(report: dsl.Input[dsl.Artifact], report_again: dsl.Output[dsl.Artifact]):
        return command("fail")

    @dsl.pipeline(name="image-artifacts")
    def artifacts_pipeline() -> dsl.Artifact:
        return check(report=probe().outputs["report"]).outputs["summary"]

    @dsl.pipeline(name="image-failure")
    def failing_pipeline():
        failed = fail(report=probe_nothing().outputs["report"])
        check(report=failed.outputs["report_again"])

    return artifacts_pipeline, failing_pipeline


def _compile(pipeline, path: Path, artifact_type: str = "system.Artifact") -> Path:
    """Compiles with kfp's compiler; `artifact_type` replaces the artifacts' type title (kfp's
    DSL allows only system.* and google.*; TFX's compiler writes tfx.* titles)."""
    compiler.Compiler().compile(pipeline, str(path))
    path.write_text(path.read_text().replace("schemaTitle: system.Artifact",
                                             f"schemaTitle: {artifact_type}"))
    return path


def _pins(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", lock.read_text(), flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def test_image_holds_the_locked_environment_and_imports_without_network(kfp_docker):

    # Imports every module of the project's packages and TFX's v2 entrypoint (as the build
    # does, here without a network). Distributions of site-packages only: once imported,
    # setuptools puts its vendored copies (older importlib-metadata, wheel, ...) on sys.path.
    probe = ("import importlib, importlib.metadata as m, json, pkgutil, re, sys, sysconfig; "
             "names = [sys.argv[1]] + [i.name for p in sys.argv[2:] for i in pkgutil.walk_packages("
             "importlib.import_module(p).__path__, p + '.') if not i.name.endswith('__main__')]; "
             "mods = [importlib.import_module(n).__file__ for n in names]; "
             "print(json.dumps({'python': sys.executable, 'modules': mods, 'dists': "
             "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
             "for d in m.distributions(path=[sysconfig.get_paths()['purelib']])}}))")
    modules = ["tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor", "ctpipe"]
    client = docker.DockerClient(base_url=kfp_docker.docker_host)
    try:
        output = client.containers.run(kfp_docker.image, ["python", "-c", probe, *modules],
                                       network_mode="none", working_dir="/tmp", remove=True,
                                       stderr=False)
    finally:
        client.close()
    found = json.loads(output.decode().strip().splitlines()[-1])

    assert found["python"] == "/opt/venv/bin/python"
    assert len(found["modules"]) > 100  # every module under the one namespace
    assert all(f.startswith("/opt/venv/lib/python3.11/site-packages/") for f in found["modules"])
    locked = {**_pins(REPO / "requirements.lock"), **_pins(REPO / "requirements-nodeps.lock")}
    installed = found["dists"]
    wrong = {name: (version, installed.get(name)) for name, version in locked.items()
             if installed.get(name) != version}
    assert not wrong, f"image differs from the locks (locked, installed): {wrong}"
    assert set(installed) - set(locked) == {"ctpipe", "pip"}


def test_project_imports_in_a_task_and_artifacts_pass_between_tasks(kfp_docker, tmp_path):
    artifacts_pipeline, _ = _pipelines(kfp_docker.image)
    outputs = kfp_docker.run_pipeline(
        _compile(artifacts_pipeline, tmp_path / "artifacts.yaml", artifact_type="tfx.Schema"))

    summary_uri = Path(outputs["Output"].uri)
    assert summary_uri.is_relative_to(kfp_docker.pipeline_root)
    summary = json.loads(summary_uri.read_text())
    assert summary["checked"] == sorted(PROJECT_MODULES)
    report = json.loads(Path(summary["upstream"]).read_text())  # written by the first task
    assert Path(summary["upstream"]).parent.parent == summary_uri.parent.parent  # same run
    assert report["python"] == "/opt/venv/bin/python"
    assert report["uid"] == 0  # DockerRunner sets no user: the image's (root)
    assert set(report["modules"]) == set(PROJECT_MODULES)
    # A task's outputs have their declared type; handed on as the next task's input, the same
    # artifact is a bare system.Artifact (TFX's entrypoint cannot rebuild a TFX type from it).
    assert report["type"]["schemaTitle"] == "tfx.Schema"
    assert summary["upstream_type"] == {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}


def test_a_failing_task_fails_the_run_and_stops_what_follows(kfp_docker, tmp_path):
    _, failing_pipeline = _pipelines(kfp_docker.image)
    before = set(kfp_docker.pipeline_root.glob("image-failure-*"))

    with pytest.raises(RuntimeError, match=r"image-failure.*FAILURE.*Inner task failed: .*fail"):
        kfp_docker.run_pipeline(_compile(failing_pipeline, tmp_path / "failing.yaml"))

    (run,) = set(kfp_docker.pipeline_root.glob("image-failure-*")) - before
    assert (run / "probe-nothing" / "executor_output.json").is_file()
    assert not (run / "fail" / "executor_output.json").exists()
    assert not (run / "check").exists()


def test_a_pipeline_file_compiled_by_tfx_runs(kfp_docker, tmp_path):
    """TFX's KubeflowV2DagRunner output (a PipelineJob JSON) through kfp.local: the TFX v2
    entrypoint runs in the image and writes a tfx.Schema artifact under the pipeline root."""
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="image-tfx", pipeline_root="gs://unused/root",
        components=[tfx.components.ImportSchemaGen(schema_file=IMAGE_SCHEMA)])
    runner.KubeflowV2DagRunner(
        config=runner.KubeflowV2DagRunnerConfig(default_image=kfp_docker.image,
                                                use_pipeline_spec_2_1=True),
        output_dir=str(tmp_path), output_filename="pipeline.json").run(pipeline)
    before = set(kfp_docker.pipeline_root.glob("image-tfx-*"))

    kfp_docker.run_pipeline(tmp_path / "pipeline.json")

    (run,) = set(kfp_docker.pipeline_root.glob("image-tfx-*")) - before
    (output_file,) = run.glob("*/executor_output.json")
    schema = json.loads(output_file.read_text())["artifacts"]["schema"]["artifacts"][0]
    assert schema["metadata"]["tfx_version"] == "1.16.0"
    copied = Path(schema["uri"]) / "schema.pbtxt"
    assert copied.read_text() == (REPO / "schemas" / "schema.pbtxt").read_text()


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every GET with one line."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"answered by the host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_derived_image_carries_settings_and_tasks_reach_the_host(kfp_docker):
    """DockerRunner gives containers no environment: settings come with a derived image
    (containers.podman.with_environment); the host is host.containers.internal."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tag = podman.with_environment(kfp_docker.image, {"CTPIPE_PROBE": "set in the image"})
    client = docker.DockerClient(base_url=kfp_docker.docker_host)
    try:
        # Started as DockerRunner starts a task: image and command, nothing else.
        output = client.containers.run(tag, ["python", "-c", (
            "import os, urllib.request; print(os.environ['CTPIPE_PROBE']); print(urllib.request."
            f"urlopen('http://host.containers.internal:{server.server_address[1]}/').read().decode())"
        )], remove=True, stderr=False).decode().splitlines()
    finally:
        client.close()
        server.shutdown()
        subprocess.run(["podman", "rmi", tag], stdout=subprocess.DEVNULL, check=False)
    assert output[-2:] == ["set in the image", "answered by the host"]

