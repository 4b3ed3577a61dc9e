"""The compiled pipeline file: what `ctpipe compile` writes and `ctpipe submit` reads.

TensorFlow- and TFX-free, so that submitting, scheduling and listing runs start fast. The entry
command is the file's tie to the image: every step runs it, so a file whose steps run another
command was compiled for another layout of the package and must be compiled again.
"""
from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml

# The command of every step's container: our adapter around TFX's v2 entry point.
ENTRYPOINT_COMMAND = ("python", "-m", "ctpipe.pipeline.kubeflow.entrypoint")
# TFX's argument naming the executor class a step runs (kubeflow/v2/step_builder.py).
EXECUTOR_CLASS_FLAG = "--executor_class_path"
OWN_MODULES = "ctpipe."
FUNCTION_EXECUTOR_SUFFIX = "_Executor"
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


def stale_steps(spec: dict[str, Any]) -> dict[str, str]:
    """The executors this version's image could not run (a file compiled by another ctpipe),
    each with what it names that this version lacks: another entry command, or one of our
    executor classes this version does not have."""
    stale = {}
    for name, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        container = executor.get("container")
        if container is None:
            continue
        command = tuple(container.get("command", []))
        if command != ENTRYPOINT_COMMAND:
            stale[name] = f"runs `{' '.join(command)}`"
            continue
        args = container.get("args", [])
        if EXECUTOR_CLASS_FLAG in args[:-1]:
            class_path = args[args.index(EXECUTOR_CLASS_FLAG) + 1]
            if class_path.startswith(OWN_MODULES) and not _defined(class_path):
                stale[name] = f"runs {class_path}"
    return stale


def _defined(class_path: str) -> bool:
    """Whether this installation has `module.Name`, read from the module's source (finding a
    module imports its parent packages only, and ours are light; TFX's executors come with
    the locked TFX, the same for every version of ours)."""
    module, _, name = class_path.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    tree = ast.parse(Path(spec.origin).read_text())
    # TFX's @component makes `<function>_Executor` when the module is imported.
    function = name.removesuffix(FUNCTION_EXECUTOR_SUFFIX)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.FunctionDef) and node.name == function != name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name) == name for alias in node.names):
            return True
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == name for target in node.targets):
            return True
    return False
