"""podman on the host: find it, build the pipeline image with `make image`, serve the Docker API.

kfp.local's DockerRunner talks to a Docker engine through the `docker` package; podman serves the
same API on a socket (`podman system service`). The tests and the benchmark use a private socket
per session, so nothing here depends on a system-wide Docker or podman socket.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import docker

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "localhost/ctpipe:dev"
# kfp.local matches the image name against the engine's tags literally: podman tags a local
# image "localhost/NAME:TAG", so the name must be written out in full (see README, Kubeflow).
IMAGE_ENV = "CTPIPE_IMAGE"
# "0" skips `make image` (use the image as it is, e.g. when CI built it in an earlier step).
BUILD_ENV = "CTPIPE_IMAGE_BUILD"
INSTALL_HINT = ("install it with its settings: scripts/setup-system.sh containers (Debian: podman, "
                "runc; /etc/containers/containers.conf: default_ulimits = [], "
                "runtime = \"runc\"); `make test` runs it")


class ContainerSetupError(RuntimeError):
    """The host cannot run the pipeline image: what is missing and how to get it."""


def image_name() -> str:
    """The image the container tests and the benchmark run: $CTPIPE_IMAGE or the default."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def podman() -> str:
    """The podman executable; ContainerSetupError saying how to install it when it is missing."""
    path = shutil.which("podman")
    if not path:
        raise ContainerSetupError(f"podman not found: {INSTALL_HINT}")
    return path


def build_image(image: str) -> None:
    """`make image IMAGE=image` with podman (a no-op rebuild takes about two seconds).

    Skipped when $CTPIPE_IMAGE_BUILD is "0" (the image must exist then). Raises
    ContainerSetupError with the end of the build's output when the build fails (a missing base
    image is reported there with the target that makes it: `make base-image`).
    """
    engine = podman()
    if os.environ.get(BUILD_ENV) == "0":
        if subprocess.run([engine, "image", "exists", image]).returncode != 0:
            raise ContainerSetupError(f"{BUILD_ENV}=0 but image {image} does not exist: "
                                      f"make image IMAGE={image}")
        return
    result = subprocess.run(["make", "-C", str(REPO), "image", f"IMAGE={image}",
                             f"ENGINE={engine}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-25:])
        raise ContainerSetupError(f"make image IMAGE={image} failed:\n{tail}")


def with_environment(image: str, environment: dict[str, str]) -> str:
    """A tag of `image` plus ENV settings (built in seconds; the layers of `image` are shared).

    kfp.local's DockerRunner starts containers with no environment of their own, so settings a
    step reads from its environment (e.g. S3_ENDPOINT and AWS credentials for s3:// through
    tensorflow-io) have to be in the image. From a container, the host is
    `host.containers.internal` (podman's bridge gateway); a service there must listen on an
    address other than 127.0.0.1.
    """
    lines = [f"FROM {image}"] + [f"ENV {key}={json.dumps(value)}"
                                 for key, value in sorted(environment.items())]
    containerfile = "\n".join(lines) + "\n"
    tag = f"{image.rsplit(':', 1)[0]}-env:{hashlib.sha256(containerfile.encode()).hexdigest()[:12]}"
    with tempfile.TemporaryDirectory() as context:  # an empty build context
        result = subprocess.run([podman(), "build", "--pull=never", "--tag", tag, "--file", "-",
                                 context], input=containerfile, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise ContainerSetupError(f"building {tag} from {image} failed:\n{result.stdout[-2000:]}")
    return tag


@contextlib.contextmanager
def docker_api(socket: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """Serves podman's Docker-compatible API on the unix socket `socket` while the context lasts.

    Yields the address for DOCKER_HOST (`unix:///...`). The service is the podman of this user
    (same image store as `podman build`); it is stopped, and the socket removed, at the end.
    """
    engine = podman()
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)
    address = f"unix://{socket}"
    log = socket.with_suffix(".log")
    with log.open("wb") as out:
        service = subprocess.Popen([engine, "system", "service", "--time=0", address],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_answering(address, service, log, timeout_s)
        yield address
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        socket.unlink(missing_ok=True)


def _wait_until_answering(address: str, service: subprocess.Popen, log: Path,
                          timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if service.poll() is not None:
            raise ContainerSetupError(f"podman system service exited ({service.returncode}): "
                                      f"{log.read_text().strip()[-2000:]}")
        try:
            client = docker.DockerClient(base_url=address, timeout=10)
            try:
                if client.ping():
                    return
            finally:
                client.close()
        except docker.errors.DockerException:
            pass
        if time.monotonic() > deadline:
            raise ContainerSetupError(f"podman's Docker API did not answer on {address} within "
                                      f"{timeout_s:.0f} s; see {log}")
        time.sleep(0.2)


def containers_where(*filters: str) -> set[str]:
    """Ids of the containers (any state) that match every `podman ps --filter` given, e.g.
    `volume=/path` (kfp.local's tasks mount their pipeline root) or `label=key=value`."""
    command = [podman(), "ps", "--all", "--quiet", "--no-trunc"]
    for condition in filters:
        command += ["--filter", condition]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return set(result.stdout.split())


def remove_containers(ids: set[str]) -> None:
    """Removes the given containers (DockerRunner leaves every task's container behind)."""
    if ids:
        subprocess.run([podman(), "rm", "--force", *sorted(ids)], stdout=subprocess.DEVNULL,
                       check=False)
