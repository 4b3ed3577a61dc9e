"""The container entry point of every step on Kubeflow Pipelines: TFX's v2 entry point, with
what open-source KFP's driver and launcher hand over adapted to what it expects.

The compiled pipeline names this module as the command of every container
(pipeline/kubeflow/runner.py); the arguments are TFX's (`--executor_class_path`,
`--json_serialized_invocation_args`, `--json_serialized_inputs_spec_args`, Beam arguments).

On Vertex AI Pipelines the ExecutorInput is what TFX's entry point was written for and passes
through unchanged. Open-source KFP hands over other shapes:
1. Input artifacts read back from KFP's metadata (and, under KFP's local orchestrator, every
   upstream output) arrive as `system.*` types or with an empty schema; TFX cannot rebuild
   `tfx.Examples`/`tfx.Model` from that, so they get the type their input definition in the
   compiled pipeline declares. Outputs whose type is such a `system.*` one are not the step's:
   the launcher adds an `executor-logs` output it writes itself, which TFX would try to import.
Under open-source KFP's launcher, recognised by the `KFP_POD_UID` variable it sets in every
executor pod, also:
2. Artifact URIs (`minio://`, `s3://`, `gs://`) become the launcher's local mirror paths: it has
   downloaded every input there and uploads every output from there when the step ends. So a
   `minio://` root (no TensorFlow file system opens it) works, and nothing writes GCS directory
   markers that a later download would trip over.
3. After the executor, the URIs in the executor output go back to the remote ones; the launcher
   would otherwise record the mirror paths as the artifacts' URIs.
Everywhere: the folders of local outputs are made before TFX runs (kfp.local does not make them),
and a value handed to another step as a parameter is listed in the executor output as that
parameter only (kfp.local would hand over the artifact of the same name instead).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Sequence

import yaml

from ctpipe.common import storage
from ctpipe.pipeline.kubeflow.pipeline_file import EXECUTOR_CLASS_FLAG


def _title(artifact_type: dict[str, Any]) -> str:
    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    schema = yaml.safe_load(artifact_type.get("instanceSchema") or "{}") or {}
    return schema.get("title", "")


def _needs_type(artifact_type: dict[str, Any]) -> bool:
    title = _title(artifact_type)
    return not title or title.startswith("system.")


def adapt_executor_input(executor_input: dict[str, Any], inputs_spec: dict[str, Any],
                         mirror_root: str | None) -> dict[str, Any]:
    """The ExecutorInput (JSON form) as TFX's entry point needs it: TFX types restored, the
    launcher's own outputs left out, and with a `mirror_root` (under the open-source launcher)
    URIs turned into mirror paths."""
    adapted = json.loads(json.dumps(executor_input))
    declared = inputs_spec.get("artifacts", {})
    for key, artifact_list in adapted.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            if _needs_type(artifact.get("type", {})):
                if key not in declared:
                    raise ValueError(f"input artifact '{key}' has no TFX type and the step's "
                                     "input definitions do not declare it")
                artifact["type"] = declared[key]["artifactType"]
            artifact["uri"] = _mirrored(artifact["uri"], mirror_root)
    outputs = adapted.get("outputs", {}).get("artifacts", {})
    for key in [k for k, v in outputs.items()
                if any(_needs_type(a.get("type", {})) for a in v.get("artifacts", []))]:
        del outputs[key]
    for artifact_list in outputs.values():
        for artifact in artifact_list.get("artifacts", []):
            artifact["uri"] = _mirrored(artifact["uri"], mirror_root)
    return adapted


def _mirrored(uri: str, mirror_root: str | None) -> str:
    if mirror_root is None:
        return uri
    return storage.local_mirror(uri, mirror_root) or uri


def restore_executor_output(executor_output: dict[str, Any],
                            mirror_root: str | None) -> dict[str, Any]:
    """The executor output as the orchestrator reads it: with a `mirror_root` (under the
    open-source launcher), mirror paths turned back into artifact URIs; a value artifact that
    is also an output parameter of the same name (TFX's way of handing a value to another
    step's parameter) listed as the parameter only. kfp.local keys a task's outputs by name,
    artifacts over parameters (kfp/local/executor_output_utils.py
    get_outputs_from_executor_output), so the consumer would get the artifact; KFP's launcher
    uploads and records an output artifact whether the executor output lists it or not
    (launcher_v2.go uploadOutputArtifacts)."""
    restored = json.loads(json.dumps(executor_output))
    artifacts = restored.get("artifacts", {})
    for name in restored.get("parameterValues", {}):
        artifacts.pop(name, None)
    if mirror_root is not None:
        for artifact_list in artifacts.values():
            for artifact in artifact_list.get("artifacts", []):
                artifact["uri"] = (storage.remote_uri(artifact["uri"], mirror_root)
                                   or artifact["uri"])
    return restored


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(EXECUTOR_CLASS_FLAG, required=True)
    parser.add_argument("--json_serialized_invocation_args", required=True)
    parser.add_argument("--json_serialized_inputs_spec_args", default="")
    return parser.parse_known_args(argv)


def step_locations(executor_input: dict[str, Any]) -> list[str]:
    """Every location the step opens: what its parameters point at (data, span index, serving
    folder; inside JSON too, e.g. the checkpoint root in the Trainer's custom_config) and its
    artifacts' URIs."""
    artifacts = [artifact["uri"]
                 for section in (executor_input.get("inputs", {}),
                                 executor_input.get("outputs", {}))
                 for artifact_list in section.get("artifacts", {}).values()
                 for artifact in artifact_list.get("artifacts", [])]
    return storage.locations_in(
        [executor_input.get("inputs", {}).get("parameterValues", {}), artifacts])


def prepare_output_parents(executor_input: dict[str, Any]) -> None:
    """Creates the folders local output artifacts go into, as open-source KFP's launcher does
    (component/launcher_v2.go prepareOutputFolders) and kfp.local does not: TFX writes a value
    artifact (a snapshot step's String) as a file at its URI without creating its folder."""
    for artifact_list in executor_input.get("outputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if not storage.scheme(artifact["uri"]):
                os.makedirs(os.path.dirname(artifact["uri"]), exist_ok=True)


def run(argv: Sequence[str], environ: dict[str, str] | None = None,
        mirror_root: str = "/") -> None:
    """Adapts the invocation (under the OSS launcher), runs TFX's entry point, restores."""
    environ = os.environ if environ is None else environ
    args, beam_args = _parse(argv)
    executor_input = json.loads(args.json_serialized_invocation_args)
    under_launcher = storage.OSS_LAUNCHER_VARIABLE in environ
    inputs_spec = json.loads(args.json_serialized_inputs_spec_args or "{}")
    executor_input = adapt_executor_input(executor_input, inputs_spec,
                                          mirror_root if under_launcher else None)
    args.json_serialized_invocation_args = json.dumps(executor_input)
    # Before TFX is imported, so that what opens the step's locations is this registration.
    storage.register_filesystems(step_locations(executor_input))
    prepare_output_parents(executor_input)
    # Lazy on purpose: TFX opens the step's locations with what is registered by then.
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    kubeflow_v2_run_executor.main((args, beam_args))
    output_file = executor_input["outputs"]["outputFile"]
    if os.path.exists(output_file):
        with open(output_file) as handle:
            restored = restore_executor_output(json.load(handle),
                                               mirror_root if under_launcher else None)
        with open(output_file, "w") as handle:
            json.dump(restored, handle)


def main() -> None:
    # Progress notes and executor logs reach the pod's log.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(sys.argv[1:])
    storage.exit_process(0)


if __name__ == "__main__":
    main()
