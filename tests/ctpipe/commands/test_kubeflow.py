"""`ctpipe submit | schedule | runs | build`.

CONTRACT TEST OF OUR CLIENT, NOT A CLUSTER: a small aiohttp app on 127.0.0.1 answers the KFP
v2beta1 REST endpoints the `kfp` client calls and records what arrives; the tests check that
it is exactly the compiled file, the parameters given, the pipeline root and the credentials
passed, nothing more.
"""
from __future__ import annotations

import asyncio
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from ctpipe import cli
from ctpipe.commands import kubeflow
from ctpipe.pipeline.kubeflow.pipeline_file import ENTRYPOINT_COMMAND
from tests.ctpipe.conftest import assert_one_line_error, tree

REPO = Path(__file__).resolve().parents[3]
TOKEN = "test-token-123"
API = "/apis/v2beta1"


class FakeKfpApi:
    """The KFP API server's side of the calls, with in-memory state."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.authorizations: set[str | None] = set()
        self.uploads: list[dict] = []
        self.pipelines: dict[str, str] = {}  # id -> name
        self.versions: dict[str, list[str]] = {}
        self.experiments: dict[str, str] = {}  # id -> name
        self.runs: list[dict] = []
        self.recurring_runs: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get(f"{API}/healthz", lambda r: web.json_response({"multi_user": False}))
        app.router.add_get(f"{API}/pipelines", self.list_pipelines)
        app.router.add_post(f"{API}/pipelines/upload", self.upload)
        app.router.add_post(f"{API}/pipelines/upload_version", self.upload)
        app.router.add_get(f"{API}/pipelines/{{pipeline_id}}/versions", self.list_versions)
        app.router.add_get(f"{API}/experiments", self.list_experiments)
        app.router.add_post(f"{API}/experiments", self.create_experiment)
        app.router.add_post(f"{API}/runs", self.create_run)
        app.router.add_get(f"{API}/runs", self.list_runs)
        app.router.add_post(f"{API}/recurringruns", self.create_recurring_run)
        return app

    @web.middleware
    async def _record(self, request, handler):
        self.requests.append((request.method, request.path))
        self.authorizations.add(request.headers.get("Authorization"))
        return await handler(request)

    @staticmethod
    def _filter_value(request) -> str | None:
        text = request.query.get("filter")
        return json.loads(text)["predicates"][0]["stringValue"] if text else None

    async def list_pipelines(self, request):
        name = self._filter_value(request)
        found = [{"pipeline_id": i, "display_name": n} for i, n in self.pipelines.items()
                 if n == name]
        return web.json_response({"pipelines": found, "total_size": len(found)} if found else {})

    async def upload(self, request):
        form = await request.post()
        upload = {"path": request.path, "query": dict(request.query),
                  "content": form["uploadfile"].file.read()}
        self.uploads.append(upload)
        if request.path.endswith("upload_version"):
            pipeline_id = request.query["pipelineid"]
        else:
            pipeline_id = f"pipeline-{len(self.pipelines) + 1}"
            self.pipelines[pipeline_id] = request.query["name"]
        version_id = f"version-{len(self.uploads)}"
        self.versions.setdefault(pipeline_id, []).append(version_id)
        return web.json_response({"pipeline_id": pipeline_id, "pipeline_version_id": version_id,
                                  "display_name": request.query.get("name")})

    async def list_versions(self, request):
        versions = self.versions[request.match_info["pipeline_id"]][::-1]
        return web.json_response({"pipeline_versions": [
            {"pipeline_id": request.match_info["pipeline_id"], "pipeline_version_id": v}
            for v in versions[:int(request.query.get("page_size", 100))]]})

    async def list_experiments(self, request):
        name = self._filter_value(request)
        found = [{"experiment_id": i, "display_name": n} for i, n in self.experiments.items()
                 if n == name]
        return web.json_response({"experiments": found} if found else {})

    async def create_experiment(self, request):
        body = await request.json()
        experiment_id = f"experiment-{len(self.experiments) + 1}"
        self.experiments[experiment_id] = body["display_name"]
        return web.json_response({"experiment_id": experiment_id, **body})

    async def create_run(self, request):
        body = await request.json()
        self.runs.append(body)
        return web.json_response({"run_id": f"run-{len(self.runs)}", "state": "PENDING",
                                  "created_at": "2026-11-22T10:00:00Z", **body})

    async def list_runs(self, request):
        if request.query.get("namespace") == "forbidden":
            raise web.HTTPForbidden(text='{"error": "user cannot list runs in forbidden"}')
        return web.json_response({"runs": [
            {"run_id": f"run-{n}", "display_name": body["display_name"], "state": "SUCCEEDED",
             "created_at": "2026-11-22T10:00:00Z"}
            for n, body in enumerate(self.runs, start=1)][::-1]})

    async def create_recurring_run(self, request):
        body = await request.json()
        self.recurring_runs.append(body)
        return web.json_response({"recurring_run_id": f"recurring-{len(self.recurring_runs)}",
                                  **body})


@pytest.fixture
def kfp_api():
    """The fake API on a free loopback port, served from its own event-loop thread."""
    api = FakeKfpApi()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(api.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """Compiled by `ctpipe compile` from the Kubeflow settings shipped in deploy/."""
    output = tmp_path_factory.mktemp("package") / "pipeline.json"
    assert cli.main(["compile", "--image", "img:1", "--pipeline-root", "gs://bucket/root",
                     "--config", str(REPO / "deploy" / "kubeflow.yaml"),
                     "--output", str(output)]) == 0
    return output


def _ctpipe(*args: str) -> int:
    return cli.main(list(args))


def test_submit_uploads_the_compiled_file_and_runs_it_with_the_given_parameters(
        kfp_api, package, capsys):
    api, host = kfp_api
    status = _ctpipe("submit", "--host", host, "--package", str(package), "--existing-token",
                     TOKEN, "--param", "data_root=gs://other/spans", "--param", "train_steps=50",
                     "--param", "span=7")
    out = capsys.readouterr().out
    assert status == 0
    [upload] = api.uploads
    assert upload["content"] == package.read_bytes()
    assert upload["query"]["name"] == "taxi-big-tipper"
    [run] = api.runs
    # The span is an integer parameter: the API server refuses a string for it
    # (apiserver/template/v2_template.go validatePipelineJobInputs).
    assert run["runtime_config"]["parameters"] == {
        "data_root": "gs://other/spans", "train_args": json.dumps({"num_steps": 50}), "span": 7}
    # Open-source KFP's root DAG driver reads the root only from the run's runtime config
    # (backend/src/v2/driver/driver.go RootDAG, 2.2-2.4; root_dag.go today), never from the
    # file's defaultPipelineRoot: without it the run would write to the cluster's default.
    assert run["runtime_config"]["pipeline_root"] == "gs://bucket/root"
    assert "artifacts under gs://bucket/root" in out
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipeline-1",
                                                 "pipeline_version_id": "version-1"}
    assert api.experiments == {"experiment-1": "taxi-big-tipper"}
    assert f"{host}/#/runs/details/run-1" in out
    # The token authenticates the calls and is never part of what is uploaded or stored.
    assert api.authorizations == {f"Bearer {TOKEN}"}
    assert TOKEN.encode() not in upload["content"]
    assert TOKEN not in json.dumps(run)


def test_the_platform_config_travels_in_the_uploaded_file(kfp_api, tmp_path, capsys):
    """Compiled for standalone KFP with a models volume: the file's second YAML document is the
    Kubernetes platform spec, which the API server reads from the upload itself (apiserver/
    template/v2_template.go NewV2SpecTemplate); `submit` sends the file unchanged."""
    api, host = kfp_api
    output = tmp_path / "pipeline.yaml"
    assert cli.main(["compile", "--image", "img:1", "--pipeline-root",
                     "minio://mlpipeline/v2/artifacts", "--config",
                     str(REPO / "deploy" / "kubeflow-volume.yaml"), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert ("Kubernetes platform config (open-source KFP only): Secrets "
            "mlpipeline-minio-artifact; volumes big-tipper-models at /models; S3 endpoint "
            "http://minio-service.kubeflow:9000") in out
    assert _ctpipe("submit", "--host", host, "--package", str(output)) == 0
    [upload] = api.uploads
    assert upload["content"] == output.read_bytes()
    spec, platform = yaml.safe_load_all(upload["content"])
    assert spec["pipelineInfo"]["name"] == upload["query"]["name"] == "taxi-big-tipper"
    assert "kubernetes" in platform["platforms"]
    assert b"mlpipeline-minio-artifact" in upload["content"], "the Secret, by name only"
    assert api.runs[0]["runtime_config"]["pipeline_root"] == "minio://mlpipeline/v2/artifacts"


def test_a_second_submit_uploads_a_new_version_of_the_same_pipeline(kfp_api, package):
    api, host = kfp_api
    for _ in range(2):
        assert _ctpipe("submit", "--host", host, "--package", str(package)) == 0
    first, second = api.uploads
    assert first["path"].endswith("/pipelines/upload")
    assert second["path"].endswith("/pipelines/upload_version")
    assert second["query"]["pipelineid"] == "pipeline-1"
    assert second["content"] == package.read_bytes()
    assert [r["pipeline_version_reference"]["pipeline_version_id"] for r in api.runs] == [
        "version-1", "version-2"]
    assert len(api.pipelines) == 1 and len(api.experiments) == 1


def test_schedule_creates_a_recurring_run(kfp_api, package, capsys):
    api, host = kfp_api
    assert _ctpipe("schedule", "--host", host, "--package", str(package), "--cron", "0 3 * * *",
                   "--experiment", "nightly", "--param", "train_steps=800") == 0
    [recurring] = api.recurring_runs
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["max_concurrency"] in (1, "1")
    assert recurring["no_catchup"] is True
    assert recurring["runtime_config"]["parameters"] == {
        "train_args": json.dumps({"num_steps": 800})}
    assert recurring["runtime_config"]["pipeline_root"] == "gs://bucket/root"
    assert api.experiments == {"experiment-1": "nightly"}
    assert "recurring-1" in capsys.readouterr().out


def test_pipeline_root_overrides_the_compiled_one_for_runs_and_schedules(kfp_api, package):
    api, host = kfp_api
    assert _ctpipe("submit", "--host", host, "--package", str(package),
                   "--pipeline-root", "gs://elsewhere/root") == 0
    assert _ctpipe("schedule", "--host", host, "--package", str(package), "--cron", "0 3 * * *",
                   "--pipeline-root", "s3://bucket/root") == 0
    assert api.runs[0]["runtime_config"]["pipeline_root"] == "gs://elsewhere/root"
    assert api.recurring_runs[0]["runtime_config"]["pipeline_root"] == "s3://bucket/root"


def test_a_root_the_launcher_cannot_store_under_is_refused_before_any_request(
        kfp_api, package, tmp_path, capsys):
    api, host = kfp_api
    local = tmp_path / "local.json"
    local.write_text(json.dumps({**json.loads(package.read_text()),
                                 "defaultPipelineRoot": str(tmp_path / "root")}))
    assert _ctpipe("submit", "--host", host, "--package", str(local)) == 1
    assert f"was compiled for {tmp_path / 'root'}" in capsys.readouterr().err
    assert _ctpipe("schedule", "--host", host, "--package", str(package), "--cron", "0 3 * * *",
                   "--pipeline-root", "/mnt/root") == 1
    assert "--pipeline-root /mnt/root: a cluster stores artifacts under" in capsys.readouterr().err
    assert api.requests == []


def test_a_file_compiled_by_an_earlier_layout_is_refused_before_any_request(
        kfp_api, package, tmp_path, capsys):
    """Files of earlier layouts, as they were compiled: before the single `ctpipe` namespace
    every step ran `python -m pipeline.kfp_entrypoint`; before the steps were folders,
    ServedModel's executor was `ctpipe.components.served_model.Executor`. Today's image has
    neither: the pod would fail at import, deep in a run."""
    api, host = kfp_api
    text = package.read_text()
    before_namespace = tmp_path / "before-namespace.json"
    before_namespace.write_text(text.replace(".".join(ENTRYPOINT_COMMAND[2:]),
                                             "pipeline.kfp_entrypoint"))
    before_folders = tmp_path / "before-folders.json"
    assert "ctpipe.components.served_model.executor.Executor" in text
    before_folders.write_text(text.replace("ctpipe.components.served_model.executor.Executor",
                                           "ctpipe.components.served_model.Executor"))
    for old, says in ((before_namespace, "runs `python -m pipeline.kfp_entrypoint`"),
                      (before_folders, "runs ctpipe.components.served_model.Executor,")):
        assert _ctpipe("submit", "--host", host, "--package", str(old)) == 1
        err = capsys.readouterr().err
        assert "was compiled by another version of ctpipe" in err
        assert says in err
        assert "compile it again with `ctpipe compile`" in err
    assert api.requests == []


def test_runs_lists_recent_runs_with_their_state(kfp_api, package, capsys):
    api, host = kfp_api
    assert _ctpipe("submit", "--host", host, "--package", str(package),
                   "--run-name", "nightly-1") == 0
    capsys.readouterr()
    assert _ctpipe("runs", "--host", host) == 0
    assert re.search(r"SUCCEEDED\s+run-1\s+nightly-1", capsys.readouterr().out)


def test_unknown_parameters_and_bad_cron_are_refused_before_any_request(
        kfp_api, package, capsys):
    api, host = kfp_api
    assert _ctpipe("submit", "--host", host, "--package", str(package),
                   "--param", "windw=3") == 1
    assert "unknown runtime parameter 'windw'" in capsys.readouterr().err
    assert _ctpipe("submit", "--host", host, "--package", str(package),
                   "--param", "span=newest") == 1
    assert "--param span expects an integer, got 'newest'" in capsys.readouterr().err
    assert _ctpipe("schedule", "--host", host, "--package", str(package),
                   "--cron", "* * *") == 1
    assert "--cron expects 5 fields" in capsys.readouterr().err
    assert api.requests == []


def test_an_api_error_is_one_line(kfp_api, package, capsys):
    _, host = kfp_api
    assert _ctpipe("runs", "--host", host, "--namespace", "forbidden") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctpipe: listing runs failed: HTTP 403")
    assert "user cannot list runs" in err
    assert "\n" not in err


# --- build.yaml --------------------------------------------------------------------------

def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))


def test_build_yaml_parses_and_every_step_command_exists():
    build = yaml.safe_load((REPO / "build.yaml").read_text())
    subcommands = cli.build_parser()._subparsers._group_actions[0].choices
    steps = kubeflow.build_steps(REPO / "build.yaml", {"SHORT_SHA": "abc1234"})
    assert [step_id for step_id, _ in steps] == [step["id"] for step in build["steps"]]
    for step_id, command in steps:
        program, first = command[0], command[1]
        if program == "ctpipe":
            assert first in subcommands, step_id
            # The arguments parse as the command defines them.
            cli.build_parser().parse_args(command[1:])
        elif program == "make":
            assert first in _makefile_targets(), step_id
        elif program == "docker":
            assert first in ("build", "push"), step_id
            if first == "build":
                assert (REPO / command[-1] / "Dockerfile").is_file()
        else:
            pytest.fail(f"step {step_id} runs {program}, which this repository does not provide")
    dockerfile = (REPO / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_build_dry_run_prints_the_steps_with_substitutions(capsys):
    assert _ctpipe("build", "--dry-run", "--substitution", "SHORT_SHA=abc1234",
                   "--substitution", "_IMAGE=eu.gcr.io/p/ctpipe") == 0
    out = capsys.readouterr().out
    commands = [shlex.split(line) for line in out.splitlines() if not line.startswith("#")]
    assert ["docker", "push", "eu.gcr.io/p/ctpipe:abc1234"] in commands
    compile_step = next(c for c in commands if c[:2] == ["ctpipe", "compile"])
    assert compile_step[compile_step.index("--image") + 1] == "eu.gcr.io/p/ctpipe:abc1234"
    assert "$" not in out


# --- help and refusals -------------------------------------------------------------------

def test_each_command_has_help_naming_its_required_flags(ctpipe):
    for command, required in (("compile", ("--image", "--pipeline-root")),
                              ("submit", ("--host",)), ("schedule", ("--host", "--cron")),
                              ("runs", ("--host",)), ("build", ("--dry-run",))):
        shown = ctpipe(command, "--help")
        assert (shown.status, shown.err) == (0, ""), command
        assert shown.out.startswith(f"usage: ctpipe {command} ")
        for flag in required:
            assert flag in shown.out, (command, flag)
    assert_one_line_error(ctpipe("runs"), "the following arguments are required: --host")
    assert_one_line_error(ctpipe("schedule", "--host", "http://127.0.0.1:1"),
                          "the following arguments are required: --cron")


def test_compile_without_the_cluster_settings_writes_no_file(ctpipe, tmp_path):
    output = tmp_path / "pipeline.yaml"
    refused = ctpipe("compile", "--image", "img:1", "--pipeline-root", "gs://bucket/root",
                     "--output", output)
    assert_one_line_error(refused, "'data_root' is required", "'serving_root' is required")
    assert_one_line_error(ctpipe("compile", "--image", "img:1", "--pipeline-root",
                                 "gs://bucket/root", "--config", tmp_path / "nope.yaml",
                                 "--output", output),
                          f"config file not found: {tmp_path / 'nope.yaml'}")
    assert tree(tmp_path) == {}


def test_a_token_variable_that_is_empty_is_named_before_any_request(
        kfp_api, package, ctpipe, monkeypatch):
    api, host = kfp_api
    monkeypatch.delenv("CTPIPE_TEST_KFP_TOKEN", raising=False)
    assert_one_line_error(ctpipe("submit", "--host", host, "--package", package, "--token-env",
                                 "CTPIPE_TEST_KFP_TOKEN"),
                          "--token-env: environment variable CTPIPE_TEST_KFP_TOKEN is empty")
    assert api.requests == []


def test_an_api_server_that_is_not_there_is_one_line(tmp_path):
    """In its own process, as a user sees it: the KFP client's retries stay quiet (urllib3
    warns at each), then one line says what could not be reached."""
    with socket.socket() as reserved:  # bound, not listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        answer = subprocess.run([sys.executable, "-m", "ctpipe.cli", "runs", "--host", host],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (answer.returncode, answer.stdout) == (1, "")
    assert answer.stderr.startswith(f"ctpipe: connecting to KFP at {host} failed: ")
    assert "Connection refused" in answer.stderr
    assert answer.stderr.count("\n") == 1, answer.stderr


def test_build_refuses_a_missing_or_malformed_build_file(ctpipe, tmp_path):
    assert_one_line_error(ctpipe("build", "--dry-run", "--build-file", tmp_path / "nope.yaml"),
                          f"build file not found: {tmp_path / 'nope.yaml'}")
    for content in ("steps: [\n", "{}\n", "steps: [{name: gcr.io/cloud-builders/docker}]\n"):
        (tmp_path / "build.yaml").write_text(content)
        assert_one_line_error(ctpipe("build", "--dry-run", "--build-file",
                                     tmp_path / "build.yaml"),
                              f"{tmp_path / 'build.yaml'} is not a Cloud Build file")
    assert_one_line_error(ctpipe("build", "--dry-run", "--substitution", "SHORT_SHA"),
                          "--substitution expects NAME=VALUE, got 'SHORT_SHA'")
    assert_one_line_error(ctpipe("build", "--substitution", "SHORT_SHA=abc1234"),
                          "only --dry-run is supported here")
