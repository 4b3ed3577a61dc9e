"""Replacing a file so that a reader sees the old content or the new, never half of it.

The pipeline, the models and the command line share it.
"""
from __future__ import annotations

import os
import tempfile

from ctpipe.common import storage


def write_atomically(path: str | os.PathLike, data: str | bytes) -> None:
    """Local files: a temporary file in the same folder, flushed to disk, given the mode a plain
    write would (other processes, TF Serving among them, read it) and renamed over the target;
    removed if anything fails. Bucket URIs (`gs://`, `s3://`): an object upload replaces the
    object whole when it completes, so the object is written directly."""
    path = os.fspath(path)
    content = data.encode() if isinstance(data, str) else data
    if storage.is_remote(path):
        with storage.gfile().GFile(path, "wb") as handle:
            handle.write(content)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # mkstemp creates the file for its owner alone; the result gets the mode a plain write
    # would leave: the replaced file's, or a new file's under the umask.
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else _new_file_mode()
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


def _new_file_mode() -> int:
    """The mode open() gives a new file: 0o666 less the process's umask (which can only be
    read by setting it, so it is set back at once)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
