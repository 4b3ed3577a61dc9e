"""TF Serving's on-disk layout: a model's base path holds one folder per version, named by an
integer (`00001` is version 1); anything else is ignored.

Shared by the server (which versions to load), the client (which versions a label may name)
and the pipeline (what it pushes beside a version, the model card it reads back), so all read a
base path the same way. Stays free of TensorFlow: only a remote base path (`gs://...`) needs
TensorFlow's file system (`storage.gfile`).
"""
from __future__ import annotations

import os
import posixpath

from ctpipe.common import storage

SAVED_MODEL_FILE = "saved_model.pb"
# What the pipeline keeps in each version it pushes, under assets.extra/ (which TF Serving
# ignores): the push record (AUC at the push, distribution of the eval predictions), the
# statistics of its training window, and its model card (what it was trained on).
PUSH_RECORD_FILE = "assets.extra/ctpipe/push.json"
TRAINING_STATISTICS_FILE = "assets.extra/ctpipe/training_statistics.pb"
MODEL_CARD_FILE = "assets.extra/ctpipe/model_card.json"


def version_folders(base_path: str) -> dict[int, str]:
    """{version: folder} under `base_path`; FileNotFoundError when `base_path` does not exist."""
    if storage.is_remote(base_path):
        gfile = storage.gfile()
        if not gfile.isdir(base_path):
            raise FileNotFoundError(base_path)
        return {int(name.rstrip("/")): posixpath.join(base_path, name.rstrip("/"))
                for name in gfile.listdir(base_path)
                if name.rstrip("/").isdigit() and gfile.isdir(posixpath.join(base_path, name))}
    return {int(name): os.path.join(base_path, name) for name in os.listdir(base_path)
            if name.isdigit() and os.path.isdir(os.path.join(base_path, name))}
