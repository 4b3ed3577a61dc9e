"""KFP's local orchestrator (`kfp.local`, kfp 2.13) with DockerRunner on podman's Docker API.

How kfp 2.13's DockerRunner runs a task (kfp/local/docker_task_handler.py, task_dispatcher.py):
- one container per task, one task at a time, in topological order; each container is started with
  `containers.run(image, command=<command + args>)`: the whole list becomes the container's CMD,
  so an ENTRYPOINT in the image would be put in front of it (the pipeline image has none);
- no user, working directory, environment, network or resource settings: the image's defaults
  (root, WORKDIR, ENV; podman's default network);
- one bind mount, read-write: the local pipeline root, at the same path inside. Every artifact
  URI is a path under it (`<root>/<pipeline>-<timestamp>/<task>/<output>`); nothing else of the
  host is visible, so input data must be under the pipeline root (or in the image);
- the ExecutorInput is put into the command where the placeholder `{{$}}` is (TFX's v2
  entrypoint takes it as `--json_serialized_invocation_args {{$}}`); outputs are read back from
  the ExecutorOutput file the task writes (`outputs.output_file`), plus OutputPath parameters;
- the image is looked up by literal tag (`localhost/ctpipe:dev`, not `ctpipe:dev`) and pulled
  when not found; containers are not removed afterwards (the session below removes them).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Iterator

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
        from kfp.local import pipeline_orchestrator

        given = dict(arguments or {})
        if isinstance(pipeline_spec, (str, Path)):
            pipeline_spec, defaults = load_pipeline_file(pipeline_spec)
            given = {**defaults, **given}
        return pipeline_orchestrator.run_local_pipeline(pipeline_spec=pipeline_spec,
                                                        arguments=given)


def load_pipeline_file(path: str | Path):
    """(PipelineSpec, runtime parameter values) from a compiled pipeline file.

    Reads both kinds: a PipelineJob JSON as TFX's KubeflowV2DagRunner writes it (`pipelineSpec`
    plus `runtimeConfig.parameterValues`, which become the arguments) and a bare PipelineSpec
    (JSON or YAML, as kfp's compiler writes it). The PipelineJob's `gcsOutputDirectory` is not
    used: kfp.local writes under the pipeline root given to `kfp.local.init`.
    """
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    text = Path(path).read_text()
    document = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    arguments: dict[str, Any] = {}
    if "pipelineSpec" in document:
        arguments = dict(document.get("runtimeConfig", {}).get("parameterValues", {}))
        document = document["pipelineSpec"]
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(document, spec)
    return spec, arguments


@contextlib.contextmanager
def docker_session(pipeline_root: Path, socket: Path, image: str | None = None,
                   build: bool = True) -> Iterator[KfpDocker]:
    """Builds the image (`make image`), serves podman's Docker API on `socket`, points the `docker`
    package at it (DOCKER_HOST) and initialises kfp.local with DockerRunner on `pipeline_root`.

    At the end: DOCKER_HOST restored, the containers this session made removed, the API stopped.
    Raises ContainerSetupError (podman missing, image build failed, API not answering).
    """
    import kfp.local

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
