"""The `kfp_docker` fixture: KFP's local orchestrator running every task in the pipeline image;
`pipeline_image`: the image alone (tests/containers/oss_launcher.py runs it with podman directly).

Session scope: builds the image (`make image`, about 2 s when nothing changed; $CTPIPE_IMAGE_BUILD=0
skips it), serves podman's Docker API on a private socket, points the `docker` package at it
(DOCKER_HOST) and calls `kfp.local.init(runner=DockerRunner(), pipeline_root=<tmp>)`. At the end
the containers of the session are removed and the API is stopped. Fails (does not skip) when
podman is missing or the image cannot be built, with what to do.

Tests that use it are marked `containers` (`make test` runs them; `make test-containers` runs
only them; `pytest -m "not containers"` leaves them out).
"""
from __future__ import annotations

import pytest

from containers import kfp_local, podman


@pytest.fixture(scope="session")
def kfp_docker(tmp_path_factory) -> kfp_local.KfpDocker:
    """kfp.local with DockerRunner on podman: `.image`, `.pipeline_root`, `.docker_host`,
    `.run_pipeline(spec_or_file, arguments)`."""
    base = tmp_path_factory.mktemp("kfp-docker")
    try:
        session = kfp_local.docker_session(pipeline_root=base / "root", socket=base / "api.sock")
        with session as kfp_docker:
            yield kfp_docker
    except podman.ContainerSetupError as error:
        pytest.fail(f"containers: {error}", pytrace=False)


@pytest.fixture(scope="session")
def pipeline_image() -> str:
    """The pipeline image, built (`make image`) unless $CTPIPE_IMAGE_BUILD is 0."""
    image = podman.image_name()
    try:
        podman.build_image(image)
    except podman.ContainerSetupError as error:
        pytest.fail(f"containers: {error}", pytrace=False)
    return image
