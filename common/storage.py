"""Where the pipeline's files live, as URIs: local paths, `gs://`, `s3://` and KFP's `minio://`.

Two ways to reach a bucket, and which one a place uses:
- Artifacts on open-source Kubeflow Pipelines pass through the KFP launcher, which downloads
  every input artifact to a local mirror path before the step runs and uploads every output
  artifact from its mirror path after it ends (`/gcs/B/K`, `/minio/B/K`, `/s3/B/K`). Steps
  there work on the mirror (`local_mirror`), which also makes `minio://` usable at all: no
  TensorFlow file system opens it.
- What outlives a run (span index, checkpoints, served models, input data) is read and written
  directly with TensorFlow's file systems: `gs://` natively, `s3://` through tensorflow-io's S3
  file system (`S3_ENDPOINT` and AWS credentials in the environment; MinIO is S3), so a
  `minio://B/K` location is opened as `s3://B/K` (`direct_uri`).
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import sys
from types import ModuleType
from typing import Any, Iterable, Iterator

from ctpipe.common.errors import UserError

MIRRORED_SCHEMES = {"gs": "gcs", "minio": "minio", "s3": "s3"}
# Set by open-source KFP's launcher in every executor pod: a step there works on local mirrors.
OSS_LAUNCHER_VARIABLE = "KFP_POD_UID"
_LOCATION = re.compile(r"([a-z][a-z0-9+.-]*://|/)[^\n]*")


def scheme(uri: str) -> str:
    """`gs`, `s3`, `minio`, ... or "" for a local path."""
    head, separator, _ = uri.partition("://")
    return head if separator else ""


def join(base: str, *parts: str) -> str:
    """Joins with "/" whatever the scheme (os.path.join would mangle `gs://` on Windows-less
    systems only by luck)."""
    return posixpath.join(base.rstrip("/"), *parts)


def direct_uri(uri: str) -> str:
    """The URI TensorFlow's file systems open for `uri`: `minio://` is MinIO's S3 API."""
    if scheme(uri) == "minio":
        return "s3://" + uri[len("minio://"):]
    return uri


def local_mirror(uri: str, root: str = "/") -> str | None:
    """The local path where KFP's open-source launcher mirrors an artifact URI (the same rule
    as the launcher's LocalPathForURI), or None for a scheme it does not mirror."""
    mirror = MIRRORED_SCHEMES.get(scheme(uri))
    if mirror is None:
        return None
    return posixpath.join(root, mirror, uri.split("://", 1)[1])


def remote_uri(path: str, root: str = "/") -> str | None:
    """The inverse of `local_mirror`: the artifact URI of a mirror path, or None."""
    relative = posixpath.relpath(path, root)
    head, _, rest = relative.partition("/")
    for uri_scheme, mirror in MIRRORED_SCHEMES.items():
        if head == mirror and rest:
            return f"{uri_scheme}://{rest}"
    return None


def _strings(value: Any) -> Iterator[str]:
    """Every string in `value`, and in strings that hold JSON (a step's custom_config)."""
    if isinstance(value, str):
        yield value
        if value[:1] in ("{", "["):
            try:
                yield from _strings(json.loads(value))
            except ValueError:
                pass
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def locations_in(value: Any) -> list[str]:
    """The URIs and absolute paths among the strings of `value`, nested JSON included (the
    Trainer's checkpoint root sits inside its custom_config)."""
    return sorted({text for text in _strings(value) if _LOCATION.fullmatch(text)})


def gfile() -> ModuleType:
    """TensorFlow's file API (`tf.io.gfile`), for URIs of remote file systems (`gs://`,
    `s3://`). The one place the ground floor reaches for TensorFlow, on first use: local paths
    need only Python, so the command line, the serving client and the gateway stay free of it
    (their start-up is measured in docs/serving-client.md)."""
    import tensorflow as tf  # lazy on purpose: see the docstring

    return tf.io.gfile


def is_remote(path: str) -> bool:
    """A URI of a remote file system (`gs://...`), as opposed to a local path."""
    return "://" in path


def register_filesystems(locations: Iterable[str]) -> None:
    """Makes TensorFlow able to open every location given (URIs and paths, e.g. what
    `locations_in` finds), or says which it cannot. `s3://` (and `minio://`, opened as `s3://`)
    needs tensorflow-io's S3 file system, which registers itself when imported: imported here
    on purpose, not left to whatever else happens to import it (TFX's v2 entry point does
    today, through TFMA). Beam's own S3 file system (boto3) reads the same bucket; both take the
    endpoint and credentials from the environment (README: S3_ENDPOINT, AWS_ENDPOINT_URL,
    AWS_*)."""
    by_scheme: dict[str, str] = {}
    for location in locations:
        by_scheme.setdefault(scheme(direct_uri(location)), location)
    if "s3" in by_scheme:
        import tensorflow_io  # noqa: F401  (lazy on purpose: importing it registers s3://)
    missing = sorted(set(by_scheme) - set(gfile().get_registered_schemes()))
    if missing:
        raise UserError("no TensorFlow file system opens " + ", ".join(
            f"{name}:// (e.g. {by_scheme[name]})" for name in missing))


def exit_process(status: int) -> None:
    """Ends the process with `status`. tensorflow-io 0.37.1's S3 file system aborts any process
    that loaded it when C++ static objects are destroyed at exit ("pure virtual method called",
    status 134; tensorflow/io#2039, fixed after its last release): a successful step would then
    look failed to its orchestrator. When it was loaded, the process leaves without that
    teardown, after flushing what Python buffered."""
    if "tensorflow_io" not in sys.modules:
        sys.exit(status)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
