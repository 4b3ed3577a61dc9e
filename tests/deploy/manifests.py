"""Reading the Kubernetes manifests under deploy/ (shared by the deploy tests)."""
from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents_by_kind(name: str, expected: int) -> dict[str, dict]:
    """The manifests of `deploy/<name>` by kind; there must be `expected`, of distinct kinds."""
    documents = list(yaml.safe_load_all((DEPLOY / name).read_text()))
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents) == expected, name
    return by_kind
