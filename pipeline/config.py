"""The one typed configuration of the pipeline: defaults here, overrides from a file or flags.

`PipelineConfig` is valid once constructed (pydantic: unknown keys, wrong types and out-of-range
values are rejected with the setting's name), so nothing downstream checks it again. Physical
locations (pipeline root, data root, serving destination, span index) and the Beam arguments
live here, never in the pipeline factory, so the same factory serves every orchestrator.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from ctpipe.common import storage
from ctpipe.common.errors import UserError
from ctpipe.common.policies import DataFormat, DriftPolicy, Rollout
from ctpipe.common.settings import Settings
from ctpipe.models.options import TrainerOptions
from ctpipe.tracking.options import EMBEDDED_ARTIFACTS_FOLDER, EMBEDDED_STORE_FILE, TrackingOptions

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = str(PROJECT_DIR / "schemas" / "schema.pbtxt")

# Local Beam defaults: Beam's FnApiRunner, in-process, in-memory, one worker (the data is small;
# processes would only add start-up time on two cores). Beam 2.72's DirectRunner would first
# download its Prism runner from GitHub (nothing may be fetched at run time; without network it
# fails and falls back to this same FnApiRunner). Without a dependency argument TFX packages
# itself for remote Beam workers at every Beam step (about 5 s each); the in-process workers
# already have what the project's setup.py installs, so it is named here and TFX skips that.
LOCAL_BEAM_ARGS: tuple[str, ...] = (
    "--runner=FnApiRunner",
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
    f"--setup_file={PROJECT_DIR / 'setup.py'}",
)


# TF Serving's --model_name of the served model, unless configured otherwise.
DEFAULT_MODEL_NAME = "big_tipper"


class ConfigError(UserError, ValueError):
    """A configuration value or file is wrong; the message names the setting."""


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be within [0, 1], got {value}")
    return value


Probability = Annotated[float, AfterValidator(_probability)]

# Kubernetes names: Secrets and claims are DNS subdomains; keys of a Secret's data and
# environment variable names as Kubernetes validates them.
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Where KFP's launcher keeps its copies of artifacts (pipeline/storage.py MIRRORED_SCHEMES):
# emptyDir volumes since KFP 2.3 (backend/src/v2/compiler/argocompiler/container.go), so no
# other volume may be mounted there.
LAUNCHER_PATHS = ("/gcs", "/s3", "/minio", "/kfp-launcher")


class StepResources(Settings):
    """One step's container size: CPU in cores, memory in GiB; 0 leaves it unset."""

    cpu_request: float = Field(0.0, ge=0)
    cpu_limit: float = Field(0.0, ge=0)
    memory_request_gib: float = Field(0.0, ge=0)
    memory_limit_gib: float = Field(0.0, ge=0)


def _absolute_mount(path: str) -> str:
    if not path.startswith("/") or path.rstrip("/") in ("", *LAUNCHER_PATHS) or any(
            path.startswith(launcher + "/") for launcher in LAUNCHER_PATHS):
        raise ValueError(f"mount path must be absolute and outside {', '.join(LAUNCHER_PATHS)} "
                         f"(KFP's launcher's own volumes), got {path!r}")
    return path.rstrip("/")


class KubernetesSettings(Settings):
    """Open-source KFP only: written into the compiled file as KFP's Kubernetes platform config
    (the kfp-kubernetes package's), which KFP's driver applies to each step's pod. No
    credentials: Secrets are named, their values stay in the cluster."""

    # MinIO's or another S3 API's address for what the steps open themselves as s3:// (span
    # store, checkpoints, serving folder, data); empty: AWS S3 itself.
    s3_endpoint: str = Field("", pattern=r"^(https?://[^/\s]+)?$")
    s3_region: str = "us-east-1"
    s3_verify_tls: bool = True
    # Secret name -> {key in the Secret: environment variable}, on every step, e.g.
    # {mlpipeline-minio-artifact: {accesskey: AWS_ACCESS_KEY_ID, secretkey: AWS_SECRET_ACCESS_KEY}}.
    secret_env: dict[Annotated[str, Field(pattern=K8S_NAME)],
                     dict[Annotated[str, Field(pattern=SECRET_KEY)],
                          Annotated[str, Field(pattern=ENV_NAME)]]] = {}
    # PersistentVolumeClaim name -> mount path, mounted only on the steps whose settings point
    # into it (e.g. the serving folder: ServedModel and the Pusher).
    volumes: dict[Annotated[str, Field(pattern=K8S_NAME)],
                  Annotated[str, AfterValidator(_absolute_mount)]] = {}
    # Step id -> GiB: a volume of that size (a generic ephemeral volume of `scratch_storage_class`,
    # made and deleted with the pod) where KFP's launcher keeps the step's copies of its input
    # and output artifacts; unset: the node's disk, unreserved.
    artifact_scratch_gib: dict[str, Annotated[float, Field(gt=0)]] = {}
    scratch_storage_class: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$")
    # Full Kubeflow: the endpoint, credentials and volumes come from Kubeflow PodDefaults
    # (deploy/kfp-pod-defaults.yaml) instead, which select the steps' pods by their label.
    pod_defaults: bool = False

    @model_validator(mode="after")
    def _distinct_mounts(self) -> "KubernetesSettings":
        if self.pod_defaults and (self.s3_endpoint or self.secret_env or self.volumes):
            raise ValueError("pod_defaults: the PodDefaults give the endpoint, credentials and "
                             "volumes; leave s3_endpoint, secret_env and volumes unset")
        paths = list(self.volumes.values())
        nested = [(a, b) for a in paths for b in paths if a != b and b.startswith(a + "/")]
        if len(set(paths)) != len(paths) or nested:
            raise ValueError(f"volumes need distinct, non-nested mount paths, got {paths}")
        variables = [env for keys in self.secret_env.values() for env in keys.values()]
        if len(set(variables)) != len(variables):
            raise ValueError(f"secret_env sets an environment variable twice: {variables}")
        return self


class PipelineConfig(Settings):
    """Every setting of the pipeline. Construct it with `build_config` / `load_config`, which
    turn validation errors into one readable `ConfigError`."""

    model_config = Settings.model_config | {"protected_namespaces": ()}

    pipeline_name: str = Field("taxi-big-tipper", pattern=r"^[a-z0-9][a-z0-9-]*$")
    # Name of the model under the serving base path, as TF Serving's --model_name.
    model_name: str = Field(DEFAULT_MODEL_NAME, pattern=r"^[A-Za-z0-9_-]+$")
    pipeline_root: str = Field(min_length=1)
    data_root: str = Field(min_length=1)
    # Push destination: versions are written to `<serving_root>/<model_name>/<version>/`.
    serving_root: str = Field(min_length=1)
    # The span each run ingests: 0 is the newest span in data_root; N fails the run until span
    # N's files are there (late data is loud). `ctpipe run --span N` sets it.
    span: int = Field(0, ge=0)
    # Span folders hold CSV files (`span-N/*.csv`) or Parquet files (`span-N/*.parquet`).
    data_format: DataFormat = "csv"
    # Where each ingested span's examples are, read and written by the steps themselves;
    # empty: under the pipeline root.
    span_index: str = ""
    # Curated schema (its content travels in the pipeline); empty: SchemaGen infers one.
    schema_path: str = DEFAULT_SCHEMA
    # Rolling window: train on the latest `window` spans; 0 means every span available.
    window: int = Field(0, ge=0)
    # The Trainer's floor in steps; a full training also makes `trainer.epochs` passes over
    # the window's training examples, whichever is more.
    train_steps: int = Field(600, gt=0)
    eval_steps: int = Field(50, gt=0)
    # The Evaluator sees this many of the newest span's eval examples (an AUC within about
    # ±0.005) plus `eval_sample_examples` sampled from the older spans of the window, so its
    # cost follows neither the history nor the span's size.
    eval_newest_examples: int = Field(20000, gt=0)
    eval_sample_examples: int = Field(1000, ge=0)
    # The candidate must reach min_auc and lose at most max_auc_regression against the
    # served model.
    min_auc: Probability = 0.7
    max_auc_regression: float = Field(0.01, ge=0)
    trainer: TrainerOptions = TrainerOptions()
    enable_cache: bool = True
    # Beam arguments of every Beam-based component (README: Dataflow, Flink, Spark).
    beam_args: tuple[str, ...] = Field(LOCAL_BEAM_ARGS, strict=False)
    # Container sizes of steps, by step id (e.g. Trainer), where steps run in containers
    # (Kubeflow); unset values leave the cluster's default. Local runs ignore them.
    step_resources: dict[str, StepResources] = {}
    # What the steps' pods need on open-source Kubeflow Pipelines beyond the pipeline file's
    # steps: object-store endpoint, credentials (by Secret name), volumes, scratch space. None
    # (Vertex AI, kfp.local): the compiled file carries no Kubernetes platform config.
    kubernetes: KubernetesSettings | None = None
    # Data validation: a drifted feature warns (the run goes on: retraining is CT's answer to
    # drift) or stops the run before the Trainer.
    drift_policy: DriftPolicy = "warn"
    # A window's pooled statistics (the drift reference, and the training statistics kept with
    # a pushed model for skew monitoring) come from this many of its training examples, spread
    # over its spans: their cost stays flat as the history grows.
    statistics_sample_examples: int = Field(3000, gt=0)
    # How a pushed version reaches traffic: `direct` (it becomes the `stable` label), or it is
    # labelled `canary` / `shadow` for `ctpipe gateway` while `stable` stays (`ctpipe rollout
    # analyze --apply` promotes or rolls back). Labels live in TF Serving's model config file,
    # `serving_model_config` (a local or mounted path; empty: no labels are written).
    rollout: Rollout = "direct"
    serving_model_config: str = ""
    # Retention: after each successful `ctpipe run`, delete the artifacts of runs older than
    # the newest N that nothing still needs (retention/gc.py; `ctpipe gc`). 0: keep everything.
    gc_keep_runs: int = Field(0, ge=0)
    # Concept drift: the served model's AUC on the newly arrived span may fall at most this
    # much below its AUC when it was pushed.
    concept_drift_max_auc_drop: float = Field(0.05, ge=0, le=1)
    # Experiment tracking in MLflow (off: null). `true` logs to the workspace's embedded store,
    # a URI to that tracking server; a mapping sets `ctpipe.tracking.options.TrackingOptions` fields.
    tracking: TrackingOptions | None = None

    @field_validator("tracking", mode="before")
    @classmethod
    def _tracking_off(cls, value: Any) -> Any:
        return None if value is False else value

    @model_validator(mode="after")
    def _files_exist(self) -> "PipelineConfig":
        if self.schema_path and not Path(self.schema_path).is_file():
            raise ValueError(f"schema file not found: {self.schema_path}")
        if self.rollout != "direct" and not self.serving_model_config:
            raise ValueError(f"rollout '{self.rollout}' labels the pushed version in TF "
                             "Serving's model config file: set serving_model_config")
        if "://" in self.serving_model_config:
            raise ValueError("serving_model_config must be a local or mounted path (the file "
                             f"TF Serving polls), got {self.serving_model_config!r}")
        return self

    @property
    def serving_model_dir(self) -> str:
        return storage.join(self.serving_root, self.model_name)

    @property
    def span_index_uri(self) -> str:
        """Read and written directly by the components, so a `minio://` pipeline root becomes
        the same bucket over MinIO's S3 API."""
        return self.span_index or storage.join(storage.direct_uri(self.pipeline_root),
                                               "span-index")

    def tracking_uri(self, workspace: str | Path) -> str:
        """The MLflow tracking URI of runs in `workspace` ("" when tracking is off)."""
        if self.tracking is None:
            return ""
        return self.tracking.uri or f"sqlite:///{Path(workspace).resolve() / EMBEDDED_STORE_FILE}"

    def tracking_artifacts(self, workspace: str | Path) -> str:
        """Where runs logged into a database or file store keep their artifacts: the
        workspace's `mlartifacts/` ("" for a tracking server, which decides that itself;
        MLflow's own default would be `./mlruns` in whatever folder the command ran)."""
        uri = self.tracking_uri(workspace)
        if not uri or uri.split(":", 1)[0] in ("http", "https", "databricks"):
            return ""
        return (Path(workspace).resolve() / EMBEDDED_ARTIFACTS_FOLDER).as_uri()

    def trainer_options(self) -> TrainerOptions:
        """The Trainer's options with the checkpoint root defaulted under the pipeline root
        (it must outlive every Trainer execution)."""
        if self.trainer.checkpoints.root:
            return self.trainer
        root = storage.join(storage.direct_uri(self.pipeline_root), "checkpoints")
        checkpoints = self.trainer.checkpoints.model_copy(update={"root": root})
        return self.trainer.model_copy(update={"checkpoints": checkpoints})

    def opened_locations(self) -> dict[str, str]:
        """What the steps open themselves rather than through artifacts, by setting: data,
        span index, checkpoints, pretrained model, serving folder and its model config."""
        options = self.trainer_options()
        found = {"data_root": self.data_root, "span_index": self.span_index_uri,
                 "trainer.checkpoints.root": options.checkpoints.root,
                 "trainer.transfer.pretrained_model":
                     options.transfer.pretrained_model if options.transfer else "",
                 "serving_root": self.serving_root,
                 "serving_model_config": self.serving_model_config}
        return {name: location for name, location in found.items() if location}

    @functools.cached_property
    def curated_schema(self) -> str:
        """The curated schema's text, which becomes a pipeline parameter: editing the file
        changes the cache key of every step that depends on it."""
        return Path(self.schema_path).read_text() if self.schema_path else ""

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A checked copy with the given settings changed; None values are ignored."""
        values = self.model_dump()
        values.update({key: value for key, value in changes.items() if value is not None})
        return build_config(values)


def _setting(location: tuple) -> str:
    return ".".join(str(part) for part in location)


def _describe(error: Mapping[str, Any], hints: Mapping[str, str]) -> str:
    name = _setting(error["loc"])
    kind, context, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "missing":
        hint = hints.get(name, "")
        return f"'{name}' is required" + (f": {hint}" if hint else "")
    expected = {"int_type": "int", "int_parsing": "int", "bool_type": "bool",
                "bool_parsing": "bool", "float_type": "float", "float_parsing": "float",
                "string_type": "str", "tuple_type": "a list", "dict_type": "a mapping",
                "model_type": "a mapping", "model_attributes_type": "a mapping"}.get(kind)
    if expected:
        return f"'{name}' expects {expected}, got {value!r}"
    if kind == "greater_than" and context.get("gt") == 0:
        return f"'{name}' must be positive, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
                 "less_than_equal": "<="}[kind]
        limit = next(iter(context.values()))
        return f"'{name}' must be {bound} {limit}, got {value!r}"
    if kind == "literal_error":
        return f"'{name}' must be {context['expected']}, got {value!r}"
    if kind == "string_pattern_mismatch":
        return f"'{name}' must match {context['pattern']}, got {value!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{name}' {message}" if name else message


def build_config(values: Mapping[str, Any],
                 hints: Mapping[str, str] | None = None) -> PipelineConfig:
    """Validates `values` once; every problem is named in one ConfigError. `hints` say how a
    missing setting is given where the values came from (a flag, a file)."""
    try:
        return PipelineConfig.model_validate(dict(values))
    except ValidationError as err:
        unknown = [_setting(e["loc"]) for e in err.errors() if e["type"] == "extra_forbidden"]
        problems = [_describe(e, hints or {}) for e in err.errors()
                    if e["type"] != "extra_forbidden"]
        if unknown:
            known = ", ".join(sorted(PipelineConfig.model_fields))
            problems.insert(0, f"unknown setting(s): {', '.join(unknown)}; known: {known} "
                               f"(Trainer settings go under 'trainer:')")
        raise ConfigError("config: " + "; ".join(problems)) from None


def read_config_file(paths: str | Path | Sequence[str | Path] | None) -> dict[str, Any]:
    """The settings of YAML or JSON files, a later file's settings replacing an earlier's (an
    empty mapping without a file)."""
    if paths is None:
        return {}
    if isinstance(paths, (str, Path)):
        paths = [paths]
    values: dict[str, Any] = {}
    for path in map(Path, paths):
        values.update(_read_one_file(path))
    return values


def _read_one_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not valid: {err}") from None
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return dict(values)


def load_config(path: str | Path | Sequence[str | Path] | None,
                overrides: Mapping[str, Any] | None = None,
                hints: Mapping[str, str] | None = None,
                defaults: Mapping[str, Any] | None = None) -> PipelineConfig:
    """`defaults`, then the files' settings, then `overrides` (None values ignored),
    validated once."""
    values = {**(defaults or {}), **read_config_file(path)}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_config(values, hints)


def local_locations(workspace: str | Path, data_root: str | Path) -> dict[str, str]:
    """Where a local workspace keeps the pipeline root and the serving folder."""
    workspace = Path(workspace).resolve()
    return {"pipeline_root": str(workspace / "pipeline_root"),
            "data_root": str(Path(data_root).resolve()),
            "serving_root": str(workspace / "serving")}


def local_config(workspace: str | Path, data_root: str | Path,
                 settings: Mapping[str, Any] | None = None) -> PipelineConfig:
    """`settings` (a file's values, or keyword settings in tests) placed in a workspace."""
    return build_config({**(settings or {}), **local_locations(workspace, data_root)})
