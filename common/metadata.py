"""A local workspace's ML Metadata store (`metadata.sqlite`), opened by what reads it (status,
report, lineage: read-only) and by `ctpipe gc` (which marks what it deletes)."""
from __future__ import annotations

from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ctpipe.common.errors import UserError

METADATA_FILE = "metadata.sqlite"


def open_store(workspace: Path, writable: bool = False):
    """The workspace's store; UserError when no run has made one yet."""
    path = Path(workspace) / METADATA_FILE
    if not path.is_file():
        raise UserError(f"no metadata store at {path}: has a run happened in this workspace?")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    modes = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
    return metadata_store.MetadataStore(config)
