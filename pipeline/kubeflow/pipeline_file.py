"""The compiled pipeline file: what `ctpipe compile` writes and `ctpipe submit` reads.

TensorFlow- and TFX-free, so that submitting, scheduling and listing runs start fast. The entry
command is the file's tie to the image: every step runs it, so a file whose steps run another
command was compiled for another layout of the package and must be compiled again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# The command of every step's container: our adapter around TFX's v2 entry point.
ENTRYPOINT_COMMAND = ("python", "-m", "ctpipe.pipeline.kubeflow.entrypoint")
DATA_ROOT_PARAMETER = "data_root"
SPAN_PARAMETER = "span"
TRAIN_ARGS_PARAMETER = "train_args"


def train_args_json(train_steps: int) -> str:
    """The Trainer's train_args as the runtime parameter carries them."""
    return json.dumps({"num_steps": train_steps})


def pipeline_file_text(documents: list[dict[str, Any]], path: Path) -> str:
    """The file as kfp's compiler writes it (kfp/compiler/pipeline_spec_builder.py
    write_pipeline_spec_to_file): YAML documents, the PipelineSpec first, then the platform
    spec; JSON holds the PipelineSpec alone (what Vertex AI and older tools read)."""
    if path.suffix == ".json":
        (spec,) = documents
        return json.dumps(spec, indent=2, sort_keys=True) + "\n"
    return yaml.safe_dump_all(documents, sort_keys=True)


def read_pipeline_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(PipelineSpec, platform spec or None) of a file `pipeline_file_text` wrote (or kfp's
    compiler: a first document that is a PipelineJob is unwrapped to its spec)."""
    text = Path(path).read_text()
    documents = ([json.loads(text)] if str(path).endswith(".json")
                 else [d for d in yaml.safe_load_all(text) if d is not None])
    if not documents or not isinstance(documents[0], dict):
        raise ValueError(f"{path} holds no pipeline")
    spec = documents[0].get("pipelineSpec", documents[0])
    return spec, (documents[1] if len(documents) > 1 else None)


def stale_entrypoints(spec: dict[str, Any]) -> dict[str, list[str]]:
    """The executors whose container runs another command than this version's entry point
    (a file compiled by an earlier ctpipe), with that command."""
    return {name: executor["container"].get("command", [])
            for name, executor in spec.get("deploymentSpec", {}).get("executors", {}).items()
            if "container" in executor
            and tuple(executor["container"].get("command", [])) != ENTRYPOINT_COMMAND}
