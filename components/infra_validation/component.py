"""The InfraValidation step (its check: components/infra_validation/executor.py).
(No `from __future__ import annotations`: TFX's @component reads the annotations as types.)
"""
import logging

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from ctpipe.components.infra_validation.executor import (
    EVAL_SPLIT,
    check_serving,
    read_examples,
    record_blessing,
)

log = logging.getLogger(__name__)


@component
def InfraValidation(
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
    model_name: Parameter[str],
    num_examples: Parameter[int] = 5000,
) -> None:
    check = check_serving(path_utils.serving_model_path(model.uri),
                          read_examples(examples.uri, EVAL_SPLIT, num_examples), model_name)
    record_blessing(blessing, check)
    if check.blessed:
        log.info("infra validation: blessed (%s)", check.reason)
    else:
        log.warning("infra validation: NOT blessed, the Pusher will not push: %s", check.reason)
