"""Compiles the pipeline for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner.

The same `create_pipeline` as the local runner. What differs on a cluster lives here:
- every component runs in one image: TFX's image with this project installed (`Dockerfile`),
  so the curated schema is read at its path inside the image;
- the data root and the Trainer's `train_args` are KFP runtime parameters, set per run or per
  schedule without recompiling;
- the evaluation baseline uses TFX's LatestBlessedModelStrategy, the only blessed-model
  resolver KFP v2 compiles;
- Beam runs multi-process inside the component's pod by default, and the Trainer's container
  asks for the configured CPU and memory.

The file written is a KFP v2 pipeline (a PipelineSpec, schema 2.1) that the KFP UI, `kfp`
client and `ctpipe submit` upload as they are.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipeline.config import DEFAULT_SCHEMA, ConfigError, PipelineConfig, load_config

# Where the Dockerfile copies the project (`pip install -e` keeps the code there).
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA_PATH = f"{IMAGE_PROJECT_DIR}/schemas/schema.pbtxt"
# DirectRunner with one worker process per core of the component's pod; see README for
# Dataflow, Flink and Spark arguments.
CLUSTER_BEAM_ARGS: tuple[str, ...] = (
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)
DATA_ROOT_PARAMETER = "data_root"
TRAIN_ARGS_PARAMETER = "train_args"
TRAINER_ID = "Trainer"


def cluster_defaults() -> PipelineConfig:
    """Defaults for a cluster: a config file is read on top of these."""
    return PipelineConfig(beam_args=CLUSTER_BEAM_ARGS, baseline_excludes_candidate=False)


def kubeflow_config(config_file: str | Path | None, pipeline_root: str) -> PipelineConfig:
    """The configuration for a cluster: file settings, the pipeline root, the image's schema."""
    config = load_config(config_file, base=cluster_defaults())
    if config.baseline_excludes_candidate:
        raise ConfigError("config: 'baseline_excludes_candidate' must be false on Kubeflow: "
                          "KFP v2 compiles only TFX's LatestBlessedModelStrategy resolver")
    if config.schema_path == DEFAULT_SCHEMA:
        # The curated schema travels in the image; check the copy the image is built from.
        if not Path(DEFAULT_SCHEMA).is_file():
            raise ConfigError(f"config: curated schema not found: {DEFAULT_SCHEMA}")
        config = dataclasses.replace(config, schema_path=IMAGE_SCHEMA_PATH)
    return config.replace(pipeline_root=pipeline_root).validate(check_files=False)


def train_args_json(train_steps: int) -> str:
    """The Trainer's train_args as the runtime parameter carries them."""
    return json.dumps({"num_steps": train_steps})


def compile_pipeline(config: PipelineConfig, image: str, output: str | Path) -> dict[str, Any]:
    """Writes the KFP v2 pipeline file for `config` running in `image`; returns its content."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration import data_types
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import RunParameters, create_pipeline

    if not image:
        raise ConfigError("an image is required (--image)")
    defaults = {DATA_ROOT_PARAMETER: config.data_root,
                TRAIN_ARGS_PARAMETER: train_args_json(config.train_steps)}
    parameters = RunParameters(**{
        name: data_types.RuntimeParameter(name=name, ptype=str, default=value)
        for name, value in defaults.items()})
    pipeline = create_pipeline(config, run_parameters=parameters)
    if config.trainer_cpu_limit or config.trainer_memory_limit_gib:
        trainer = next(node for node in pipeline.components if node.id == TRAINER_ID)
        trainer.with_platform_config(
            pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
                cpu_limit=config.trainer_cpu_limit,
                memory_limit=config.trainer_memory_limit_gib))
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True))
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = pipeline_file(job, defaults)
    _write_atomically(Path(output), json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return spec


def pipeline_file(job: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """The PipelineSpec inside TFX's PipelineJob, made self-contained for a KFP cluster: the
    pipeline root and the runtime parameters' defaults move into the spec, where KFP's
    upload reads them (TFX keeps them in the job's runtimeConfig, which only Vertex reads)."""
    spec = dict(job["pipelineSpec"])
    spec["defaultPipelineRoot"] = job["runtimeConfig"]["gcsOutputDirectory"]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name]["defaultValue"] = value
        parameters[name]["isOptional"] = True
    return spec


def _write_atomically(path: Path, text: str) -> None:
    """A reader (or an upload) never sees half a file; a failed compile leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
