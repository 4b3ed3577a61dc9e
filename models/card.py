"""The model card every exported model carries: what it was trained on and how it started.

Kept inside the SavedModel (under assets.extra/, which TF Serving ignores), so wherever a version
is served, the pipeline can tell which data it saw: a run on unchanged data must not warm-start
from, or compare against, the model that same data produced.
"""
from __future__ import annotations

import dataclasses
import json
import posixpath

import tensorflow as tf

from ctpipe.common.layout import MODEL_CARD_FILE

# Beside the copy of a served model that the pipeline hands to the Trainer: its version.
SERVED_VERSION_FILE = "served_version.json"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    window_digest: str
    window_spans: str  # e.g. "1-15"
    newest_span: int
    training: str  # full | incremental
    origin: str  # scratch, warm start from ..., transfer from ...
    steps: int
    code_version: str


def write_card(export_dir: str, card: ModelCard) -> None:
    path = posixpath.join(export_dir, MODEL_CARD_FILE)
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(dataclasses.asdict(card), indent=1) + "\n")


def read_card(model_dir: str) -> ModelCard | None:
    """The card of an exported model, or None for a model exported without one."""
    path = posixpath.join(model_dir, MODEL_CARD_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return ModelCard(**json.loads(handle.read()))
