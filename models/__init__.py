"""The big-tipper model: features, Keras model, training and export; free of orchestration."""
from __future__ import annotations

import hashlib
from pathlib import Path


def code_version() -> str:
    """Hash of this package's source: put into the Trainer's parameters so that editing the
    model code invalidates a cached Trainer (a dotted run_fn path is not hashed by TFX)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
