"""`ctpipe` as a user meets it: what a command prints on stdout and stderr and its exit status,
run in this process through `ctpipe.cli.main` (the console script's exit status is main()'s
result; argparse ends help and usage errors with SystemExit, whose status counts the same)."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Callable

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ctpipe import cli
from ctpipe.common.metadata import METADATA_FILE


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def ctpipe(capsys) -> Callable[..., Outcome]:
    """`ctpipe(*args)`: runs `ctpipe ARGS`; its exit status, stdout and stderr."""
    def run(*args: object) -> Outcome:
        capsys.readouterr()
        try:
            status = cli.main([str(arg) for arg in args])
        except SystemExit as ended:
            status = 0 if ended.code is None else ended.code
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)
    return run


def assert_one_line_error(outcome: Outcome, *named: str) -> str:
    """A refusal as `ctpipe` reports bad input: status 1 with one `ctpipe: ...` line, or
    argparse's status 2 with the usage and one `ctpipe ...: error: ...` line; nothing on stdout.
    The error line must name each of `named`; returns it."""
    lines = outcome.err.strip().splitlines()
    assert outcome.status in (1, 2), outcome
    assert outcome.out == "", outcome
    if outcome.status == 1:
        assert len(lines) == 1 and lines[0].startswith("ctpipe: "), outcome.err
    else:
        assert lines[0].startswith("usage: ctpipe"), outcome.err
        assert ": error: " in lines[-1] and "Traceback" not in outcome.err, outcome.err
    for text in named:
        assert text in lines[-1], (text, lines[-1])
    return lines[-1]


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under `root` with its content's digest: compare two to show that
    nothing stored changed (an absent root is an empty tree)."""
    if not root.exists():
        return {}
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            if path.is_file() else "folder" for path in sorted(root.rglob("*"))}


@pytest.fixture
def unrun_workspace(tmp_path) -> Path:
    """A workspace whose ML Metadata store exists (a real SQLite store, as the LocalDagRunner
    creates it) but holds no run yet: the state before a first run completes."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(workspace / METADATA_FILE)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    metadata_store.MetadataStore(config)
    return workspace
