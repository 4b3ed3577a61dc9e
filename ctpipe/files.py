"""Replacing a file so that a reader sees the old content or the new, never half of it.

A leaf module: the pipeline, the models and the command line share it.
"""
from __future__ import annotations

import os
import tempfile


def write_atomically(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> None:
    """Local files: a temporary file in the same folder, flushed to disk, given `mode` (other
    processes, TF Serving among them, read it) and renamed over the target; removed if anything
    fails. Bucket URIs (`gs://`, `s3://`): an object upload replaces the object whole when it
    completes, so the object is written directly."""
    path = os.fspath(path)
    content = data.encode() if isinstance(data, str) else data
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "wb") as handle:
            handle.write(content)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
