"""Compiles the pipeline for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner.

The same `create_pipeline` as the local runner. What differs on a cluster lives here:
- every step runs in the project's image (`Dockerfile`), started through our entry point
  (pipeline/kubeflow/entrypoint.py), which adapts what open-source KFP's launcher hands over;
- the data root, the span to ingest (0: the newest) and the Trainer's `train_args` are KFP
  runtime parameters, set per run or per schedule without recompiling;
- TFX gives ExampleGen a driver hook that only Vertex AI runs; it is dropped, and ExampleGen's
  executor resolves the span itself on every orchestrator;
- the steps that read state outside the artifact store (data folder, span index, serving
  folder) get a snapshot step ahead of them, uncached, whose description of that state becomes
  their `snapshot` parameter: no custom driver runs on a cluster to put it into their cache
  key, so without it they could not be cached, nor anything after them
  (pipeline/kubeflow/snapshots.py);
- Beam runs multi-process inside the step's pod by default; steps' containers ask for the
  configured CPU and memory, and on open-source KFP their pods get the configured endpoint,
  credentials (by Secret name), volumes and scratch space (pipeline/kubeflow/platform.py).

The file written is a KFP v2 pipeline (a PipelineSpec, schema 2.1) with only `container`
executors and no lifecycle hooks, which open-source KFP 2.x, its local orchestrator and Vertex
AI Pipelines all run; with `kubernetes` settings, a second YAML document holds KFP's Kubernetes
platform spec (as kfp's compiler writes it), which only open-source KFP reads. `ctpipe submit`
uploads the file as it is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from tfx.dsl.context_managers import dsl_context_registry
from tfx.orchestration import data_types
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from ctpipe.common import storage
from ctpipe.common.files import write_atomically
from ctpipe.common.snapshot import SNAPSHOT_KEY
from ctpipe.components.example_gen.component import ExampleGen
from ctpipe.components.example_gen.executor import FILE_FORMAT_KEY, REQUESTED_SPAN_KEY
from ctpipe.components.served_model.component import ServedModel
from ctpipe.components.span_window.component import SpanWindow
from ctpipe.components.track_run.component import TrackRun
from ctpipe.components.track_run.executor import INPUTS
from ctpipe.pipeline.config import ConfigError, PipelineConfig, build_config, read_config_file
from ctpipe.pipeline.kubeflow import platform as kfp_platform
from ctpipe.pipeline.kubeflow import snapshots as snapshot_steps
from ctpipe.pipeline.kubeflow.pipeline_file import (
    DATA_ROOT_PARAMETER,
    ENTRYPOINT_COMMAND,
    SPAN_PARAMETER,
    TRAIN_ARGS_PARAMETER,
    pipeline_file_text,
    train_args_json,
)
from ctpipe.pipeline.pipeline import OUTSIDE_STATE_STEPS, RunParameters, create_pipeline
from ctpipe.tracking.options import OUTBOX_FOLDER

# DirectRunner with one worker process per core of the step's pod; see README for
# Dataflow, Flink and Spark arguments. The compile adds `--sdk_container_image=IMAGE`: remote
# Beam workers run the project's image, and TFX then does not package itself for them at
# every Beam step.
CLUSTER_BEAM_ARGS: tuple[str, ...] = (
    "--runner=FnApiRunner",  # the local runner, without the download of Beam's Prism runner
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)
TRACK_RUN_ID = "TrackRun"
# Executor kinds that open-source KFP's backend compiles (argocompiler): resolvers and custom
# jobs are refused when a run is created.
RUNNABLE_EXECUTORS = ("container", "importer")

HINTS = {
    "data_root": "set data_root (e.g. gs://BUCKET/taxi/spans or s3://BUCKET/taxi/spans) in the "
                 "--config file, e.g. deploy/kubeflow.yaml; it becomes the default of the "
                 "data_root runtime parameter",
    "serving_root": "set serving_root in the --config file: where TF Serving reads the pushed "
                    "versions (a mounted volume path, gs://BUCKET/serving or s3://BUCKET/serving)",
}


def kubeflow_config(config_file: str | Path | Sequence[str | Path] | None,
                    pipeline_root: str) -> PipelineConfig:
    """The configuration for a cluster: cluster defaults, the files' settings, the root."""
    config = build_config({"beam_args": list(CLUSTER_BEAM_ARGS), **read_config_file(config_file),
                           "pipeline_root": pipeline_root}, HINTS)
    if config.tracking is not None and not config.tracking.uri:
        raise ConfigError("config: 'tracking' on Kubeflow needs a tracking server the pods "
                          "reach: set tracking: {uri: http://HOST:5000} (the embedded store "
                          "is a local workspace's)")
    for name in ("data_root", "serving_root", "span_index"):
        if storage.scheme(getattr(config, name)) == "minio":
            raise ConfigError(
                f"config: '{name}' is read and written by the steps themselves, which cannot "
                f"open minio:// (only artifacts pass through KFP's launcher): use the same "
                f"bucket as s3://{getattr(config, name)[len('minio://'):]} with S3_ENDPOINT "
                "set to MinIO's address (deploy/kubeflow.yaml)")
    return config


def compile_pipeline(config: PipelineConfig, image: str, output: str | Path) -> dict[str, Any]:
    """Writes the KFP v2 pipeline file for `config` running in `image`; returns its content."""
    _require_image(image)
    if not any(arg.startswith("--sdk_container_image") for arg in config.beam_args):
        config = config.replace(beam_args=(*config.beam_args, f"--sdk_container_image={image}"))
    defaults = {DATA_ROOT_PARAMETER: config.data_root,
                TRAIN_ARGS_PARAMETER: train_args_json(config.train_steps),
                SPAN_PARAMETER: config.span}
    parameters = RunParameters(**{
        name: data_types.RuntimeParameter(name=name, ptype=type(value), default=value)
        for name, value in defaults.items()})
    output = Path(output)
    if output.suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"--output {output}: a pipeline file ends in .yaml (or .json)")
    if output.suffix == ".json" and config.kubernetes is not None:
        raise ConfigError(f"--output {output}: the Kubernetes platform config ('kubernetes' "
                          "settings) needs a YAML file, as with kfp's compiler")
    pipeline = create_pipeline(
        config, run_parameters=parameters,
        last_steps=lambda steps: [tracking_step(config, steps)] if config.tracking else [])
    snapshot_steps = add_snapshot_steps(pipeline)
    # A cached tracking step would log nothing.
    uncached = (*snapshot_steps, *([TRACK_RUN_ID] if config.tracking else []))
    spec = pipeline_spec(pipeline, image, defaults, uncached=uncached)
    kfp_platform.apply_container_settings(spec, config.step_resources, config.kubernetes)
    documents = [spec]
    if config.kubernetes is not None:
        documents.append(kfp_platform.platform_spec(spec, config))
    write_atomically(str(output), pipeline_file_text(documents, output))
    return spec


def tracking_step(config: PipelineConfig, steps: dict[str, Any]) -> Any:
    """The run's MLflow record as its last step: no process outlives a cluster's steps to log
    it afterwards, as `ctpipe run` does (components/track_run/)."""
    return TrackRun(
        pipeline_name=config.pipeline_name,
        experiment=config.tracking.experiment or config.pipeline_name,
        tracking_uri=config.tracking.uri, model_name=config.model_name,
        serving_model_config=config.serving_model_config,
        configuration=json.dumps(config.model_dump(mode="json"), sort_keys=True),
        outbox=storage.join(storage.direct_uri(config.pipeline_root), OUTBOX_FOLDER),
        timeout_seconds=config.tracking.timeout_seconds,
        **{key: steps[step].outputs[output] for key, (step, output) in INPUTS.items()},
    ).with_id(TRACK_RUN_ID)


def _require_image(image: str) -> None:
    if not image:
        raise ConfigError("an image is required (--image): the project's image, built by "
                          "`make image` (see Dockerfile)")


def add_snapshot_steps(pipeline) -> list[str]:
    """Puts a snapshot step (pipeline/kubeflow/snapshots.py) ahead of every step that reads
    outside state, its output the step's `snapshot` parameter; returns their ids."""
    snapshots: dict[str, Any] = {}
    with dsl_context_registry.use_registry(pipeline.dsl_context_registry):
        for node in pipeline.components:  # upstream steps first
            snapshot = _snapshot_step(node, snapshots)
            if snapshot is not None:
                snapshots[node.id] = snapshot.with_id(f"{node.id}Snapshot")
                node.exec_properties[SNAPSHOT_KEY] = _value(snapshots[node.id])
    unsnapshotted = set(OUTSIDE_STATE_STEPS) - set(snapshots)
    if unsnapshotted:
        raise ConfigError(f"steps reading outside state without a snapshot step: "
                          f"{', '.join(sorted(unsnapshotted))} (pipeline/kubeflow/snapshots.py)")
    pipeline.components = [*pipeline.components, *snapshots.values()]
    return [snapshot.id for snapshot in snapshots.values()]


def _value(snapshot_step):
    """The snapshot step's output as a parameter of another step (an output parameter in the
    compiled file)."""
    return snapshot_step.outputs["snapshot"].future()[0].value


def _snapshot_step(node, snapshots: dict[str, Any]):
    """The snapshot step of `node`, or None for a step that reads only its artifacts;
    `snapshots` holds those of the steps upstream of it."""
    settings = node.exec_properties
    if isinstance(node, ExampleGen):
        return snapshot_steps.ExampleGenSnapshot(
            input_base=settings["input_base"], requested_span=settings[REQUESTED_SPAN_KEY],
            file_format=settings[FILE_FORMAT_KEY])
    if isinstance(node, SpanWindow):
        ingested = snapshots[node.inputs["examples"].producer_component_id]
        return snapshot_steps.SpanWindowSnapshot(
            ingested=_value(ingested), **{key: settings[key] for key in (
                "data_root", "span_pattern", "span_index", "window")})
    if isinstance(node, ServedModel):
        return snapshot_steps.ServedModelSnapshot(
            examples=node.inputs["examples"], serving_model_dir=settings["serving_model_dir"])
    return None


def pipeline_spec(pipeline, image: str, defaults: dict[str, str],
                  uncached: Sequence[str] = ()) -> dict[str, Any]:
    """The PipelineSpec of a TFX pipeline whose steps run in `image` through our entry point,
    compiled by KubeflowV2DagRunner and made self-contained for any KFP backend: the pipeline
    root and the runtime parameters' defaults move into the spec, where KFP's upload reads them
    (TFX keeps them in the job's runtimeConfig, which only Vertex reads), and the `uncached`
    steps (they read outside state) are not cached. Refuses a spec open-source KFP cannot run."""
    _require_image(image)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=list(ENTRYPOINT_COMMAND),
            use_pipeline_spec_2_1=True))
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = dict(job["pipelineSpec"])
    spec["defaultPipelineRoot"] = job["runtimeConfig"]["gcsOutputDirectory"]
    for executor in spec["deploymentSpec"]["executors"].values():
        # TFX's Vertex-only span driver (FileBasedExampleGen); our executor resolves the span.
        executor.get("container", {}).pop("lifecycle", None)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name]["defaultValue"] = value
        parameters[name]["isOptional"] = True
    tasks = spec["root"]["dag"]["tasks"]
    for task in uncached:
        tasks[task]["cachingOptions"] = {"enableCache": False}
    for task in tasks.values():
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            producer = parameter.get("taskOutputParameter", {})
            # TFX 1.16 names the producer `<id>_task` (kubeflow/v2/step_builder.py, exec
            # properties that are placeholders); its task is `<id>`.
            if producer and producer["producerTask"] not in tasks:
                producer["producerTask"] = producer["producerTask"].removesuffix("_task")
    problems = unrunnable_executors(spec)
    if problems:
        raise ConfigError(f"the compiled pipeline {spec['pipelineInfo']['name']} would not run "
                          "on open-source Kubeflow Pipelines: " + "; ".join(problems))
    return spec


def unrunnable_executors(spec: dict[str, Any]) -> list[str]:
    """Executors open-source KFP refuses (resolvers, custom jobs) and lifecycle hooks, which
    only Vertex AI runs."""
    problems = []
    for name, executor in spec["deploymentSpec"]["executors"].items():
        kinds = [kind for kind in executor if kind not in RUNNABLE_EXECUTORS]
        if kinds:
            problems.append(f"executor {name} is a {kinds[0]}")
        if "lifecycle" in executor.get("container", {}):
            problems.append(f"executor {name} has a lifecycle hook")
    return problems
