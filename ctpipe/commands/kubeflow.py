"""`ctpipe compile | submit | schedule | runs | build`: the pipeline on Kubeflow Pipelines v2.

`compile` writes a KFP v2 pipeline file (pipeline/kubeflow/runner.py); `submit`, `schedule` and
`runs` talk to a KFP API server through pipeline/kubeflow/client.py; `build` shows build.yaml's
steps. This module only turns flags into calls and results into lines.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import subprocess
from pathlib import Path

from ctpipe.common.errors import UserError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PACKAGE = "build/pipeline.yaml"
DEFAULT_EXPERIMENT = "taxi-big-tipper"
BUILD_FILE = REPO / "build.yaml"


# --- compile -------------------------------------------------------------------------------

def _cmd_compile(args: argparse.Namespace) -> None:
    from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config

    config = kubeflow_config(args.config, args.pipeline_root)
    spec = compile_pipeline(config, args.image, args.output)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    print(f"Compiled {spec['pipelineInfo']['name']} for image {args.image} to {args.output}")
    for name, definition in sorted(parameters.items()):
        print(f"  runtime parameter {name} = {definition['defaultValue']}")
    if config.kubernetes is None:
        print("  no Kubernetes platform config (Vertex AI, or open-source KFP without "
              "'kubernetes' settings)")
    elif config.kubernetes.pod_defaults:
        print("  Kubernetes platform config: the steps' pod label only; endpoint, credentials "
              "and volumes from Kubeflow PodDefaults (deploy/kfp-pod-defaults.yaml)")
    else:
        settings = config.kubernetes
        print(f"  Kubernetes platform config (open-source KFP only): Secrets "
              f"{', '.join(settings.secret_env) or 'none'}; volumes "
              f"{', '.join(f'{c} at {m}' for c, m in settings.volumes.items()) or 'none'}; "
              f"S3 endpoint {settings.s3_endpoint or 'AWS'}")


# --- the KFP API (pipeline/kubeflow/client.py) ------------------------------------------------

def _client(args: argparse.Namespace):
    from ctpipe.pipeline.kubeflow.client import KfpClient

    token = args.existing_token
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise UserError(f"--token-env: environment variable {args.token_env} is empty")
    return KfpClient(args.host, args.namespace, token, args.in_cluster, args.ssl_ca_cert)


def _cmd_submit(args: argparse.Namespace) -> None:
    from ctpipe.pipeline.kubeflow.client import Package

    package = Package.read(Path(args.package))
    params = package.run_parameters(args.param)
    root = package.run_pipeline_root(args.pipeline_root)
    run_name = args.run_name or f"{package.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    run_id = _client(args).submit(package, args.experiment, run_name, params, root)
    print(f"run {run_id} ({run_name}), artifacts under {root}")
    print(f"{args.host.rstrip('/')}/#/runs/details/{run_id}")


def _cmd_schedule(args: argparse.Namespace) -> None:
    from ctpipe.pipeline.kubeflow.client import Package, kfp_cron

    package = Package.read(Path(args.package))
    params = package.run_parameters(args.param)
    root = package.run_pipeline_root(args.pipeline_root)
    cron = kfp_cron(args.cron)
    name = args.run_name or f"{package.name}-continuous-training"
    recurring_id = _client(args).schedule(package, args.experiment, name, cron, params, root)
    print(f"recurring run {recurring_id} ({name}): cron '{cron}', "
          f"one run at a time, no catch-up, artifacts under {root}")
    print(f"{args.host.rstrip('/')}/#/recurringrun/details/{recurring_id}")


def _cmd_runs(args: argparse.Namespace) -> None:
    runs = _client(args).runs(args.limit)
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

    if not build_file.is_file():
        raise UserError(f"build file not found: {build_file}")
    try:
        build = yaml.safe_load(build_file.read_text())
    except yaml.YAMLError:
        build = None
    if not (isinstance(build, dict) and build.get("steps")
            and all(isinstance(step, dict) and {"id", "name"} <= step.keys()
                    for step in build["steps"])):
        raise UserError(f"{build_file} is not a Cloud Build file (YAML whose steps each have "
                        "an id and a name)")
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
    parser.add_argument("--pipeline-root", metavar="URI",
                        help="where the run writes its artifacts (default: the root the file "
                             "was compiled for; the span index and checkpoints stay where "
                             "the compile put them)")


def register(commands) -> None:
    compile_parser = commands.add_parser(
        "compile", help="compile the pipeline for Kubeflow Pipelines v2")
    compile_parser.add_argument("--image", required=True,
                                help="image with this project installed (see Dockerfile)")
    compile_parser.add_argument("--pipeline-root", required=True,
                                help="where the cluster writes artifacts, e.g. gs://BUCKET/root")
    compile_parser.add_argument("--output", default=DEFAULT_PACKAGE)
    compile_parser.add_argument("--config", action="append",
                                help="YAML or JSON settings (data_root, serving_root, beam_args, "
                                     "trainer limits ...); repeat it to add files, e.g. "
                                     "deploy/beam/dataflow.yaml after deploy/kubeflow.yaml")
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
