"""ServedModel: the model TF Serving serves now, as the Trainer's warm-start base and the
Evaluator's baseline.

Why the served model rather than the latest blessed one: it is what users get, so a candidate
must beat it; it lives where TF Serving reads (a volume, `gs://`, `s3://`), which every
orchestrator can reach, while "blessed" lives in an orchestrator's metadata store (TFX Resolvers,
which open-source Kubeflow Pipelines cannot run); and a rollback or a failed infra validation
changes what is served, so the baseline follows. The served version is the highest complete
version folder (`<serving_model_dir>/<version>/saved_model.pb`), as TF Serving's default
policy serves.

A version whose model card says it was trained on exactly this run's window is skipped (the one
before it is taken): a re-run on unchanged data then resolves what the first run resolved, so
it repeats the same work (fully cached with LocalDagRunner) instead of warm-starting from, and
comparing against, the model it produced itself.

Output: a Model artifact holding a copy of the version in TFX's layout (`Format-Serving/`) and
`served_version.json`; when nothing is served yet, an empty Model artifact (custom property
`found` = 0), which the Trainer and the Evaluator treat as "no base, no baseline".
"""
from __future__ import annotations

import json
import logging
import posixpath
from typing import Any

from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.utils import io_utils, path_utils

from ctpipe.common import layout, progress, properties
from ctpipe.models.card import SERVED_VERSION_FILE, ModelCard, read_card

log = logging.getLogger(__name__)

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"


def complete_versions(serving_model_dir: str) -> list[int]:
    """Version folders holding saved_model.pb (what TF Serving can load), oldest first."""
    if not fileio.isdir(serving_model_dir):
        return []
    return sorted(version for version, folder in layout.version_folders(serving_model_dir).items()
                  if fileio.exists(posixpath.join(folder, layout.SAVED_MODEL_FILE)))


def resolve(serving_model_dir: str, window_digest: str) -> tuple[int, ModelCard | None] | None:
    """The newest served version not trained on `window_digest`, with its card."""
    for version in reversed(complete_versions(serving_model_dir)):
        card = read_card(posixpath.join(serving_model_dir, str(version)))
        if card is not None and card.window_digest == window_digest:
            log.info("ServedModel: version %d was trained on this window; looking further back",
                     version)
            continue
        return version, card
    return None


def snapshot_of(serving_model_dir: str, window_digest: str) -> str:
    found = resolve(serving_model_dir, window_digest)
    return json.dumps({"version": found[0] if found else None})


def push_record(version_dir: str) -> dict[str, Any]:
    path = posixpath.join(version_dir, layout.PUSH_RECORD_FILE)
    return json.loads(io_utils.read_string_file(path)) if fileio.exists(path) else {}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = input_dict[EXAMPLES_KEY][0]
        serving_model_dir = exec_properties["serving_model_dir"]
        found = resolve(serving_model_dir,
                        examples.get_string_custom_property(properties.WINDOW_DIGEST))
        model = output_dict[MODEL_KEY][0]
        fileio.makedirs(model.uri)
        model.set_int_custom_property(properties.FOUND, int(found is not None))
        if found is None:
            progress.note(f"ServedModel: no model served in {serving_model_dir} yet: no warm "
                          "start, no baseline")
            return
        version, card = found
        source = posixpath.join(serving_model_dir, str(version))
        io_utils.copy_dir(source, path_utils.serving_model_path(model.uri))
        io_utils.write_string_file(posixpath.join(model.uri, SERVED_VERSION_FILE),
                                   json.dumps({"version": version, "source": source}))
        model.set_int_custom_property(properties.SERVED_VERSION, version)
        trained_on = card.window_spans if card else "unknown (no model card)"
        model.set_string_custom_property(properties.TRAINED_ON_SPANS, trained_on)
        auc = push_record(source).get("auc")
        progress.note(f"ServedModel: version {version} (trained on spans {trained_on}"
                      + (f", AUC {auc:.4f} when pushed" if auc is not None else "") + ")")
