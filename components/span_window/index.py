"""The span index: where each ingested span's examples are, one small JSON file per span.

`<root>/span-N.json` names the Examples artifact (or stored copy) that holds span N, its files
per split, row counts and the fingerprint of the input files it was made from. It lives under
the pipeline root, outside any one run's artifacts, so every orchestrator reaches it (open-
source KFP cannot query ML Metadata from a step), and it is what lets a run refer to older
spans instead of copying them. Each file is written whole (a temporary name, then a rename;
one object put on a bucket), so a reader sees the old entry or the new one.
"""
from __future__ import annotations

import json
import posixpath
import uuid

from tfx.dsl.io import fileio

from ctpipe.common.window import SPLITS, SpanEntry


def entry_path(root: str, span: int) -> str:
    return posixpath.join(root, f"span-{span}.json")


def read(root: str, span: int) -> SpanEntry | None:
    path = entry_path(root, span)
    if not fileio.exists(path):
        return None
    with fileio.open(path) as handle:
        return SpanEntry(**json.loads(handle.read()))


def write(root: str, entry: SpanEntry) -> None:
    fileio.makedirs(root)
    target = entry_path(root, entry.span)
    staging = f"{target}.{uuid.uuid4().hex}.tmp"
    with fileio.open(staging, "w") as handle:
        handle.write(json.dumps({"span": entry.span, "fingerprint": entry.fingerprint,
                                 "rows": entry.rows, "uri": entry.uri, "files": entry.files},
                                sort_keys=True))
    fileio.rename(staging, target, overwrite=True)


def entry_of(span: int, fingerprint: str, uri: str, rows: dict[str, int]) -> SpanEntry:
    """The entry of examples written at `uri` in TFX's split layout."""
    files = {split: sorted(posixpath.basename(path) for path in
                           fileio.glob(posixpath.join(uri, f"Split-{split}", "*")))
             for split in SPLITS}
    return SpanEntry(span, fingerprint, dict(rows), uri, files)
