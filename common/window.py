"""The training window as the Trainer receives it: a manifest of where each span's files are.

Each span's examples stay where they were written once (the ExampleGen artifact that ingested
it); the pipeline's SpanWindow step writes `window.json`, this manifest, into an otherwise
empty Examples artifact, so a run copies nothing of the older spans. The manifest tells the
Trainer which files belong to which span (incremental training continues on the newest plus
a replay sample of the others) and identifies the data a model was trained on (its digest
goes into the model card). TensorFlow-free: the pipeline writes it too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from typing import Any, Sequence

MANIFEST_FILE = "window.json"
SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class SpanEntry:
    span: int
    # The fingerprint of the span's input files when it was ingested (TFX's file fingerprint).
    fingerprint: str
    rows: dict[str, int]
    # The Examples artifact (or stored copy) holding the span: `<uri>/Split-<split>/<file>`.
    uri: str
    files: dict[str, list[str]]

    def paths(self, split: str) -> list[str]:
        return [posixpath.join(self.uri, f"Split-{split}", name) for name in self.files[split]]


@dataclasses.dataclass(frozen=True)
class WindowManifest:
    """The spans of a window, oldest first."""

    spans: tuple[SpanEntry, ...]

    def __post_init__(self) -> None:
        if not self.spans:
            raise ValueError("a training window holds at least one span")

    @property
    def newest(self) -> SpanEntry:
        return self.spans[-1]

    @property
    def older(self) -> tuple[SpanEntry, ...]:
        return self.spans[:-1]

    @property
    def span_range(self) -> str:
        return f"{self.spans[0].span}-{self.newest.span}"

    @property
    def digest(self) -> str:
        """Identifies the window's data: the spans and their input fingerprints."""
        canonical = json.dumps([[s.span, s.fingerprint] for s in self.spans])
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    @property
    def rows(self) -> dict[str, int]:
        return {split: sum(entry.rows[split] for entry in self.spans) for split in SPLITS}

    def files(self, split: str, spans: Sequence[SpanEntry] | None = None) -> list[str]:
        """The files of `split` for `spans` (default: all), in window order."""
        return [path for entry in (self.spans if spans is None else spans)
                for path in entry.paths(split)]

    def to_json(self) -> str:
        return json.dumps({"spans": [dataclasses.asdict(s) for s in self.spans]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "WindowManifest":
        values: dict[str, Any] = json.loads(text)
        return cls(tuple(SpanEntry(**entry) for entry in values["spans"]))


def examples_uri_of(split_file_pattern: str) -> str:
    """The Examples artifact of a TFX split pattern such as `<uri>/Split-train/*`."""
    return posixpath.dirname(posixpath.dirname(split_file_pattern))
