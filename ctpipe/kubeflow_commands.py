"""`ctpipe compile | submit | schedule | runs | build`: the pipeline on Kubeflow Pipelines v2.

`compile` writes a KFP v2 pipeline file (pipeline/kubeflow_runner.py). The others talk to a
KFP API server through the `kfp` client: credentials are handed to the client per call (a
token, a variable holding one, or the pod's service-account token) and never written into the
pipeline file or its parameters.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ctpipe.errors import UserError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = "build/pipeline.json"
DEFAULT_EXPERIMENT = "taxi-big-tipper"
BUILD_FILE = REPO / "build.yaml"
# `--param train_steps=N` is the friendly form of the train_args runtime parameter.
TRAIN_STEPS_ALIAS = "train_steps"



# --- compile -------------------------------------------------------------------------------

def _cmd_compile(args: argparse.Namespace) -> None:
    from pipeline.kubeflow_runner import compile_pipeline, kubeflow_config

    config = kubeflow_config(args.config, args.pipeline_root)
    spec = compile_pipeline(config, args.image, args.output)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    print(f"Compiled {spec['pipelineInfo']['name']} for image {args.image} to {args.output}")
    for name, definition in sorted(parameters.items()):
        print(f"  runtime parameter {name} = {definition['defaultValue']}")


# --- the KFP API ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Package:
    """A compiled pipeline file and what a submission needs to know of it."""

    path: Path
    name: str
    digest: str
    parameters: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, path: Path) -> "Package":
        if not path.is_file():
            raise UserError(f"pipeline file not found: {path} (run `ctpipe compile` first)")
        content = path.read_bytes()
        try:
            spec = json.loads(content)
            name = spec["pipelineInfo"]["name"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path} is not a pipeline file written by `ctpipe compile`") \
                from None
        parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return cls(path, name, hashlib.sha256(content).hexdigest(), parameters)

    def run_parameters(self, assignments: Sequence[str]) -> dict[str, str]:
        """`k=v` pairs checked against the pipeline's runtime parameters."""
        values: dict[str, str] = {}
        for assignment in assignments:
            name, separator, value = assignment.partition("=")
            if not separator or not name:
                raise UserError(f"--param expects NAME=VALUE, got {assignment!r}")
            if name == TRAIN_STEPS_ALIAS:
                if not value.isdigit() or int(value) <= 0:
                    raise UserError(f"--param train_steps expects a positive integer, "
                                         f"got {value!r}")
                from pipeline.kubeflow_runner import TRAIN_ARGS_PARAMETER, train_args_json

                name, value = TRAIN_ARGS_PARAMETER, train_args_json(int(value))
            if name not in self.parameters:
                known = ", ".join(sorted([*self.parameters, TRAIN_STEPS_ALIAS]))
                raise UserError(f"unknown runtime parameter {name!r}; the pipeline has: "
                                     f"{known}")
            values[name] = value
        return values


def _client(args: argparse.Namespace):
    import kfp

    credentials = None
    token = args.existing_token
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise UserError(f"--token-env: environment variable {args.token_env} is empty")
    if args.in_cluster:
        from kfp.client import ServiceAccountTokenVolumeCredentials

        credentials = ServiceAccountTokenVolumeCredentials(path=None)
    return _call(f"connecting to KFP at {args.host}", kfp.Client, host=args.host,
                 namespace=args.namespace or "kubeflow", existing_token=token,
                 credentials=credentials, ssl_ca_cert=args.ssl_ca_cert)


def _call(what: str, function, *call_args, **kwargs):
    """Runs one API call; a refused call becomes one readable line."""
    import kfp_server_api

    try:
        return function(*call_args, **kwargs)
    except kfp_server_api.ApiException as err:
        body = (err.body or "").strip().replace("\n", " ")[:300]
        raise UserError(f"{what} failed: HTTP {err.status} {err.reason}: {body}") from None
    except (OSError, TimeoutError) as err:
        raise UserError(f"{what} failed: {err}") from None


def upload(client, package: Package, namespace: str | None) -> tuple[str, str]:
    """Uploads the file as a new version of the pipeline of its name (created on first upload);
    returns (pipeline id, version id)."""
    pipeline_id = _call("looking up the pipeline", client.get_pipeline_id, package.name)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    version_name = f"{package.name}-{stamp}-{package.digest[:8]}"
    if pipeline_id is None:
        pipeline = _call("uploading the pipeline", client.upload_pipeline, str(package.path),
                         pipeline_name=package.name, namespace=namespace)
        versions = _call("listing pipeline versions", client.list_pipeline_versions,
                         pipeline.pipeline_id, page_size=1, sort_by="created_at desc")
        return pipeline.pipeline_id, versions.pipeline_versions[0].pipeline_version_id
    version = _call("uploading a pipeline version", client.upload_pipeline_version,
                    str(package.path), version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def _experiment_id(client, args: argparse.Namespace) -> str:
    experiment = _call("creating the experiment", client.create_experiment,
                       name=args.experiment, namespace=args.namespace)
    return experiment.experiment_id


def _cmd_submit(args: argparse.Namespace) -> None:
    package = Package.read(Path(args.package))
    params = package.run_parameters(args.param)
    client = _client(args)
    pipeline_id, version_id = upload(client, package, args.namespace)
    run_name = args.run_name or f"{package.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    run = _call("creating the run", client.run_pipeline, _experiment_id(client, args), run_name,
                pipeline_id=pipeline_id, version_id=version_id, params=params)
    print(f"run {run.run_id} ({run_name})")
    print(f"{args.host.rstrip('/')}/#/runs/details/{run.run_id}")


def kfp_cron(expression: str) -> str:
    """KFP's cron has six fields, seconds first; a classic five-field one runs at second 0."""
    fields = expression.split()
    if len(fields) == 5:
        return f"0 {expression}"
    if len(fields) == 6:
        return expression
    raise UserError(f"--cron expects 5 fields (minute hour day month weekday) or KFP's 6 "
                         f"(seconds first), got {len(fields)}: {expression!r}")


def _cmd_schedule(args: argparse.Namespace) -> None:
    package = Package.read(Path(args.package))
    params = package.run_parameters(args.param)
    cron = kfp_cron(args.cron)
    client = _client(args)
    pipeline_id, version_id = upload(client, package, args.namespace)
    name = args.run_name or f"{package.name}-continuous-training"
    recurring = _call("creating the recurring run", client.create_recurring_run,
                      _experiment_id(client, args), name, cron_expression=cron,
                      pipeline_id=pipeline_id, version_id=version_id, params=params,
                      max_concurrency=1, no_catchup=True)
    print(f"recurring run {recurring.recurring_run_id} ({name}): cron '{cron}', "
          f"one run at a time, no catch-up")
    print(f"{args.host.rstrip('/')}/#/recurringrun/details/{recurring.recurring_run_id}")


def _cmd_runs(args: argparse.Namespace) -> None:
    client = _client(args)
    response = _call("listing runs", client.list_runs, page_size=args.limit,
                     sort_by="created_at desc", namespace=args.namespace)
    runs = response.runs or []
    if not runs:
        print("no runs")
    for run in runs:
        created = run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "?"
        print(f"{created}  {run.state or 'UNKNOWN':<10} {run.run_id}  {run.display_name}")


# --- build.yaml ----------------------------------------------------------------------------

_SUBSTITUTION = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


def build_steps(build_file: Path, overrides: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Each step of a Cloud Build file as (id, command line) with substitutions applied."""
    import yaml

    build = yaml.safe_load(build_file.read_text())
    values = {**build.get("substitutions", {}), **overrides}
    missing: set[str] = set()

    def substitute(text: str) -> str:
        def one(match: re.Match) -> str:
            if match.group(1) not in values:
                missing.add(match.group(1))
                return match.group(0)
            return str(values[match.group(1)])
        return _SUBSTITUTION.sub(one, text)

    steps = []
    for step in build["steps"]:
        program = step.get("entrypoint") or step["name"].rsplit("/", 1)[-1].split(":")[0]
        steps.append((step["id"], [substitute(program), *map(substitute, step.get("args", []))]))
    if missing:
        raise UserError(f"{build_file.name} uses substitutions without a value: "
                             f"{', '.join(sorted(missing))} (give --substitution NAME=VALUE)")
    return steps


def _git_short_sha() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError("SHORT_SHA: not a git checkout; give --substitution SHORT_SHA=...")
    return result.stdout.strip()


def _cmd_build(args: argparse.Namespace) -> None:
    overrides = {}
    for assignment in args.substitution:
        name, separator, value = assignment.partition("=")
        if not separator:
            raise UserError(f"--substitution expects NAME=VALUE, got {assignment!r}")
        overrides[name] = value
    if not args.dry_run:
        raise UserError("only --dry-run is supported here; run the build with "
                             "`gcloud builds submit --config build.yaml`")
    if "SHORT_SHA" not in overrides:
        overrides["SHORT_SHA"] = _git_short_sha()
    for step_id, command in build_steps(Path(args.build_file), overrides):
        print(f"# {step_id}\n{shlex.join(command)}")


# --- parser --------------------------------------------------------------------------------

def _add_api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True,
                        help="KFP API endpoint, e.g. https://HOST/pipeline or http://localhost:8888")
    parser.add_argument("--namespace", help="Kubernetes namespace (multi-user KFP)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--existing-token", help="bearer token for the KFP API")
    auth.add_argument("--token-env", metavar="VAR",
                      help="read the bearer token from this environment variable")
    auth.add_argument("--in-cluster", action="store_true",
                      help="use the pod's projected KFP service-account token")
    parser.add_argument("--ssl-ca-cert", help="CA bundle of the KFP endpoint")


def _add_submission_flags(parser: argparse.ArgumentParser) -> None:
    _add_api_flags(parser)
    parser.add_argument("--package", default=DEFAULT_PACKAGE,
                        help=f"compiled pipeline file (default {DEFAULT_PACKAGE})")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    parser.add_argument("--run-name")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="runtime parameter: data_root, train_args, or train_steps=N")


def register(commands) -> None:
    compile_parser = commands.add_parser(
        "compile", help="compile the pipeline for Kubeflow Pipelines v2")
    compile_parser.add_argument("--image", required=True,
                                help="image with this project installed (see Dockerfile)")
    compile_parser.add_argument("--pipeline-root", required=True,
                                help="where the cluster writes artifacts, e.g. gs://BUCKET/root")
    compile_parser.add_argument("--output", default=DEFAULT_PACKAGE)
    compile_parser.add_argument("--config", help="YAML or JSON settings (data_root, "
                                                 "serving_root, beam_args, trainer limits ...)")
    compile_parser.set_defaults(handler=_cmd_compile)

    submit = commands.add_parser("submit", help="upload the compiled pipeline and start a run")
    _add_submission_flags(submit)
    submit.set_defaults(handler=_cmd_submit)

    schedule = commands.add_parser("schedule", help="upload and create a recurring run")
    _add_submission_flags(schedule)
    schedule.add_argument("--cron", required=True,
                          help="e.g. '0 3 * * *' (daily 03:00) or KFP's 6-field form")
    schedule.set_defaults(handler=_cmd_schedule)

    runs = commands.add_parser("runs", help="recent runs on a KFP cluster")
    _add_api_flags(runs)
    runs.add_argument("--limit", type=int, default=10)
    runs.set_defaults(handler=_cmd_runs)

    build = commands.add_parser("build", help="the steps of build.yaml (Cloud Build)")
    build.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    build.add_argument("--build-file", default=str(BUILD_FILE))
    build.add_argument("--substitution", action="append", default=[], metavar="NAME=VALUE")
    build.set_defaults(handler=_cmd_build)
