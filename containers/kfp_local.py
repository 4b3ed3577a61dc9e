"""KFP's local orchestrator (`kfp.local`, kfp 2.13) with DockerRunner on podman's Docker API.

How kfp 2.13's DockerRunner runs a pipeline (kfp/local/dag_orchestrator.py, task_dispatcher.py,
docker_task_handler.py, importer_handler.py), as the tests here and a TFX-compiled file show:
- Tasks run one at a time, in topological order; no cache, no ML Metadata: every run executes
  everything and writes under a new `<pipeline root>/<pipeline name>-<timestamp>/`. `container`
  and `importer` executors only (a `resolver` raises ValueError); `lifecycle` hooks are ignored.
- One container per task: `containers.run(image, command=<command + args>)`. The whole list is
  the container's CMD, so an image ENTRYPOINT would be put in front of it (ours has none). No
  user, working directory, environment, network or resource settings: the image's (root, its
  WORKDIR and ENV; podman's default bridge network, on which the host is
  `host.containers.internal`). Settings a step reads from its environment (S3_ENDPOINT, AWS
  credentials) must be in the image: `podman.with_environment` derives one.
- One bind mount, read-write: the pipeline root (a local absolute path; `kfp.local.init` makes
  any root one), at the same path. Nothing else of the host is visible: input data and output
  folders must be under it, in the image, or reached over the network. Files are written as the
  container's root (rootful podman: root on the host too).
- The ExecutorInput replaces `{{$}}` in the command (TFX's entrypoint takes it as
  `--json_serialized_invocation_args {{$}}`). Output artifact URIs are
  `<run folder>/<task>/<output key>`, where <task> is the component's name minus its first five
  characters (kfp strips a `comp-` prefix that TFX's names do not have: `ImportSchemaGen` runs as
  `tSchemaGen`, a component named `stats` as ``; names alike after that share a folder).
- Outputs are read back only from the ExecutorOutput file the task writes (`outputs.outputFile`)
  plus OutputPath parameters: a task that writes its artifacts but no ExecutorOutput has no
  outputs, and the next task fails with ValueError ("task ... not found").
- Output artifacts carry the type their component declares (`tfx.Schema`, ...); but an upstream
  output handed to the next task as input arrives as `system.Artifact` 0.0.1, with no
  `instanceSchema` (its metadata kept). TFX's entrypoint cannot rebuild a TFX artifact from that
  ("Could not import system.Artifact"): under kfp.local, input types need the same adaptation as
  under open-source KFP's launcher.
- An importer's output is keyed `artifact` (TFX's importer declares `result`, so the step after
  a TFX Importer cannot find its input); its URI is the constant or the `uri` parameter.
- A failed task (exit status not 0) fails the run: with `raise_on_error=True` (as here) a
  RuntimeError "Pipeline '<name>' finished with status FAILURE. Inner task failed: '<task>'";
  the tasks after it do not run.
- The image is looked up by its literal tag (podman lists `localhost/ctpipe:dev`, never
  `ctpipe:dev`) and otherwise pulled; task containers are not removed (the session below
  removes its own). Task logs go to stdout.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Iterator

import kfp.local
import yaml
from google.protobuf import json_format
from kfp.local import pipeline_orchestrator
from kfp.pipeline_spec import pipeline_spec_pb2

from containers import podman


@dataclasses.dataclass(frozen=True)
class KfpDocker:
    """A kfp.local session with DockerRunner: the image, the pipeline root, the API address."""
    image: str
    pipeline_root: Path
    docker_host: str

    def run_pipeline(self, pipeline_spec, arguments: dict[str, Any] | None = None) -> dict:
        """Runs a PipelineSpec proto, or a pipeline file (see `load_pipeline_file`), under kfp.local.

        Returns the pipeline's outputs; a failed task raises RuntimeError naming it.
        """
        given = dict(arguments or {})
        if isinstance(pipeline_spec, (str, Path)):
            pipeline_spec, defaults = load_pipeline_file(pipeline_spec)
            given = {**defaults, **given}
        return pipeline_orchestrator.run_local_pipeline(pipeline_spec=pipeline_spec,
                                                        arguments=given)


def load_pipeline_file(path: str | Path):
    """(PipelineSpec, runtime parameter values) from a compiled pipeline file.

    Reads what `ctpipe compile` writes (YAML documents, the PipelineSpec first; a Kubernetes
    platform spec may follow, which kfp.local does not apply; or JSON) and a PipelineJob JSON as
    TFX's KubeflowV2DagRunner writes it (`pipelineSpec` plus `runtimeConfig.parameterValues`,
    which become the arguments). The PipelineJob's `gcsOutputDirectory` is not used: kfp.local
    writes under the pipeline root given to `kfp.local.init`.
    """
    text = Path(path).read_text()
    document = (json.loads(text) if str(path).endswith(".json")
                else next(d for d in yaml.safe_load_all(text) if d is not None))
    arguments: dict[str, Any] = dict(document.get("runtimeConfig", {}).get("parameterValues", {}))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(document.get("pipelineSpec", document), spec)
    return spec, arguments


@contextlib.contextmanager
def docker_session(pipeline_root: Path, socket: Path, image: str | None = None,
                   build: bool = True) -> Iterator[KfpDocker]:
    """Builds the image (`make image`), serves podman's Docker API on `socket`, points the `docker`
    package at it (DOCKER_HOST) and initialises kfp.local with DockerRunner on `pipeline_root`.

    At the end: DOCKER_HOST restored, the containers this session made removed, the API stopped.
    Raises ContainerSetupError (podman missing, image build failed, API not answering).
    """
    image = image or podman.image_name()
    if build:
        podman.build_image(image)
    pipeline_root = Path(pipeline_root).resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("DOCKER_HOST")
    with podman.docker_api(socket) as address:
        os.environ["DOCKER_HOST"] = address
        try:
            kfp.local.init(runner=kfp.local.DockerRunner(), pipeline_root=str(pipeline_root),
                           raise_on_error=True)
            yield KfpDocker(image=image, pipeline_root=pipeline_root, docker_host=address)
        finally:
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous
            # This session's tasks are the containers that mount its pipeline root; other
            # sessions' containers (tests, benchmarks, other users of the image) are left alone.
            podman.remove_containers(podman.containers_where(f"volume={pipeline_root}"))
