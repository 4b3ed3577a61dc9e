"""A client of a Kubeflow Pipelines API server (v2beta1 through the `kfp` package): upload a
compiled pipeline as a new version, start or schedule runs, list runs.

Credentials are handed to the `kfp` client per call (a token, or the pod's projected
service-account token) and never written into the pipeline file or its parameters. Every
refused call becomes one `KfpClientError` line naming what was attempted.
"""
from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import kfp
import kfp_server_api
import urllib3
import yaml
from kfp.client import ServiceAccountTokenVolumeCredentials

from ctpipe.common.errors import UserError
from ctpipe.pipeline.kubeflow.pipeline_file import (
    TRAIN_ARGS_PARAMETER,
    read_pipeline_file,
    stale_steps,
    train_args_json,
)

# `train_steps=N` is the friendly form of the train_args runtime parameter.
TRAIN_STEPS_ALIAS = "train_steps"
# Roots KFP's launcher can store artifacts under (backend/src/v2/objectstore/config.go,
# ParseBucketPathToConfig; `mem://` is for its own tests).
ARTIFACT_ROOT_SCHEMES = ("gs://", "s3://", "minio://")


class KfpClientError(UserError):
    """A pipeline file or a KFP API call failed; the message says which and why."""


@dataclass(frozen=True)
class Package:
    """A compiled pipeline file and what a submission needs to know of it."""

    path: Path
    name: str
    digest: str
    parameters: dict[str, dict[str, Any]]
    # The pipeline root the file was compiled for (`ctpipe compile --pipeline-root`).
    pipeline_root: str

    @classmethod
    def read(cls, path: Path) -> "Package":
        if not path.is_file():
            raise KfpClientError(f"pipeline file not found: {path} (run `ctpipe compile` first)")
        content = path.read_bytes()
        try:
            spec, _ = read_pipeline_file(path)
            name = spec["pipelineInfo"]["name"]
        except (ValueError, yaml.YAMLError, KeyError, TypeError):
            raise KfpClientError(f"{path} is not a pipeline file written by `ctpipe compile`") \
                from None
        stale = stale_steps(spec)
        if stale:
            step, reason = next(iter(stale.items()))
            raise KfpClientError(
                f"{path} was compiled by another version of ctpipe: its step {step} {reason}, "
                f"which this version and its image do not have ({len(stale)} step(s) in all); "
                "compile it again with `ctpipe compile`")
        parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return cls(path, name, hashlib.sha256(content).hexdigest(), parameters,
                   spec.get("defaultPipelineRoot", ""))

    def run_pipeline_root(self, override: str | None) -> str:
        """The pipeline root a run or recurring run is created with: `override`, else the
        compiled one. Open-source KFP never reads the file's `defaultPipelineRoot`: its root
        DAG driver takes the run's runtime config, else the `kfp-launcher` ConfigMap, else
        `minio://mlpipeline/v2/artifacts` (backend/src/v2/driver/driver.go RootDAG in 2.2-2.4,
        root_dag.go today; backend/src/v2/config/env.go DefaultPipelineRoot), so the root
        must travel with every run request."""
        root = override or self.pipeline_root
        if not root.startswith(ARTIFACT_ROOT_SCHEMES):
            origin = "--pipeline-root" if override else f"{self.path} was compiled for"
            raise KfpClientError(
                f"{origin} {root or 'no pipeline root'}: a cluster stores artifacts under a "
                f"{', '.join(ARTIFACT_ROOT_SCHEMES)} URI; give --pipeline-root or compile "
                "with one")
        return root

    def run_parameters(self, assignments: Sequence[str]) -> dict[str, Any]:
        """`k=v` pairs checked against the pipeline's runtime parameters, as values of their
        declared types: the API server refuses a string for a number parameter
        (backend/src/apiserver/template/v2_template.go validatePipelineJobInputs)."""
        values: dict[str, Any] = {}
        for assignment in assignments:
            name, separator, value = assignment.partition("=")
            if not separator or not name:
                raise KfpClientError(f"--param expects NAME=VALUE, got {assignment!r}")
            if name == TRAIN_STEPS_ALIAS:
                if not value.isdigit() or int(value) <= 0:
                    raise KfpClientError(f"--param train_steps expects a positive integer, "
                                         f"got {value!r}")

                name, value = TRAIN_ARGS_PARAMETER, train_args_json(int(value))
            if name not in self.parameters:
                known = ", ".join(sorted([*self.parameters, TRAIN_STEPS_ALIAS]))
                raise KfpClientError(f"unknown runtime parameter {name!r}; the pipeline has: "
                                     f"{known}")
            values[name] = _typed(name, value, self.parameters[name].get("parameterType"))
        return values


def _typed(name: str, value: str, parameter_type: str | None) -> Any:
    """A --param value as the runtime parameter's type wants it."""
    try:
        if parameter_type == "NUMBER_INTEGER":
            return int(value)
        if parameter_type == "NUMBER_DOUBLE":
            return float(value)
    except ValueError:
        kind = "an integer" if parameter_type == "NUMBER_INTEGER" else "a number"
        raise KfpClientError(f"--param {name} expects {kind}, got {value!r}") from None
    if parameter_type == "BOOLEAN":
        if value not in ("true", "false"):
            raise KfpClientError(f"--param {name} expects true or false, got {value!r}")
        return value == "true"
    return value


def _call(what: str, function, *call_args, **kwargs):
    """Runs one API call; a refused call becomes one readable line."""
    try:
        return function(*call_args, **kwargs)
    except kfp_server_api.ApiException as err:
        body = (err.body or "").strip().replace("\n", " ")[:300]
        raise KfpClientError(f"{what} failed: HTTP {err.status} {err.reason}: {body}") from None
    except (OSError, TimeoutError) as err:
        raise KfpClientError(f"{what} failed: {err}") from None
    except urllib3.exceptions.HTTPError as err:
        # No answer at all (refused, unresolved, TLS): the client gives up after its retries.
        raise KfpClientError(f"{what} failed: {getattr(err, 'reason', None) or err}") from None


def kfp_cron(expression: str) -> str:
    """KFP's cron has six fields, seconds first; a classic five-field one runs at second 0."""
    fields = expression.split()
    if len(fields) == 5:
        return f"0 {expression}"
    if len(fields) == 6:
        return expression
    raise KfpClientError(f"--cron expects 5 fields (minute hour day month weekday) or KFP's 6 "
                         f"(seconds first), got {len(fields)}: {expression!r}")


class KfpClient:
    """One KFP API server; `namespace` for multi-user installations."""

    def __init__(self, host: str, namespace: str | None = None, token: str | None = None,
                 in_cluster: bool = False, ssl_ca_cert: str | None = None):
        credentials = None
        if in_cluster:

            credentials = ServiceAccountTokenVolumeCredentials(path=None)
        self.host = host
        self.namespace = namespace
        self._client = _call(f"connecting to KFP at {host}", kfp.Client, host=host,
                             namespace=namespace or "kubeflow", existing_token=token,
                             credentials=credentials, ssl_ca_cert=ssl_ca_cert)

    def upload(self, package: Package) -> tuple[str, str]:
        """Uploads the file as a new version of the pipeline of its name (created on first
        upload), named by time and content; returns (pipeline id, version id)."""
        client = self._client
        pipeline_id = _call("looking up the pipeline", client.get_pipeline_id, package.name)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        version_name = f"{package.name}-{stamp}-{package.digest[:8]}"
        if pipeline_id is None:
            pipeline = _call("uploading the pipeline", client.upload_pipeline, str(package.path),
                             pipeline_name=package.name, namespace=self.namespace)
            versions = _call("listing pipeline versions", client.list_pipeline_versions,
                             pipeline.pipeline_id, page_size=1, sort_by="created_at desc")
            return pipeline.pipeline_id, versions.pipeline_versions[0].pipeline_version_id
        version = _call("uploading a pipeline version", client.upload_pipeline_version,
                        str(package.path), version_name, pipeline_id=pipeline_id)
        return pipeline_id, version.pipeline_version_id

    def _experiment_id(self, experiment: str) -> str:
        created = _call("creating the experiment", self._client.create_experiment,
                        name=experiment, namespace=self.namespace)
        return created.experiment_id

    def submit(self, package: Package, experiment: str, run_name: str,
               params: dict[str, str], pipeline_root: str) -> str:
        """Uploads the package and starts one run writing under `pipeline_root`; returns the
        run id."""
        pipeline_id, version_id = self.upload(package)
        run = _call("creating the run", self._client.run_pipeline,
                    self._experiment_id(experiment), run_name, pipeline_id=pipeline_id,
                    version_id=version_id, params=params, pipeline_root=pipeline_root)
        return run.run_id

    def schedule(self, package: Package, experiment: str, name: str, cron: str,
                 params: dict[str, str], pipeline_root: str) -> str:
        """Uploads the package and creates a recurring run writing under `pipeline_root`: one
        run at a time, no catch-up of missed schedules; returns its id."""
        pipeline_id, version_id = self.upload(package)
        recurring = _call("creating the recurring run", self._client.create_recurring_run,
                          self._experiment_id(experiment), name, cron_expression=kfp_cron(cron),
                          pipeline_id=pipeline_id, version_id=version_id, params=params,
                          pipeline_root=pipeline_root, max_concurrency=1, no_catchup=True)
        return recurring.recurring_run_id

    def runs(self, limit: int) -> list:
        response = _call("listing runs", self._client.list_runs, page_size=limit,
                         sort_by="created_at desc", namespace=self.namespace)
        return response.runs or []
