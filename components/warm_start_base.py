"""Resolver strategy: the warm-start base is the latest blessed model trained on other examples.

With TFX's LatestBlessedModelStrategy, a second run on unchanged inputs would resolve the model
the first run trained and blessed; the Trainer's `base_model` input would change and the Trainer
(and everything after it) would run again, training on the same examples twice. Leaving out
models whose Trainer consumed the current examples artifact resolves the same base model as the
first run did, so the re-run is fully cached; when a new span arrives (new examples), the latest
blessed model is the base. KFP v2 accepts only TFX's own strategies; see
PipelineConfig.baseline_excludes_candidate.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"


class LatestBlessedModelOfOtherExamplesStrategy(resolver.ResolverStrategy):
    """Inputs: `examples` (this run's), `model` and `model_blessing` (all of them)."""

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        current_examples = {a.id for a in input_dict.get(EXAMPLES_KEY, [])}
        models = list(input_dict[MODEL_KEY])
        producer = {e.artifact_id: e.execution_id
                    for e in (store.get_events_by_artifact_ids([m.id for m in models])
                              if models else [])
                    if e.type == metadata_store_pb2.Event.OUTPUT}
        consumed: dict[int, set[int]] = defaultdict(set)
        trainers = sorted(set(producer.values()))
        for event in store.get_events_by_execution_ids(trainers) if trainers else []:
            if event.type == metadata_store_pb2.Event.INPUT:
                consumed[event.execution_id].add(event.artifact_id)
        others = {
            MODEL_KEY: [m for m in models
                        if not consumed[producer.get(m.id, -1)] & current_examples],
            BLESSING_KEY: list(input_dict[BLESSING_KEY]),
        }
        resolved = LatestBlessedModelStrategy().resolve_artifacts(store, others)
        resolved[EXAMPLES_KEY] = list(input_dict.get(EXAMPLES_KEY, []))
        return resolved
