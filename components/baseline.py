"""Resolver strategies for the latest blessed model that leave some models out.

TFX's LatestBlessedModelStrategy resolves the newest blessed model. On a re-run with unchanged
inputs that is the model the first run trained and blessed, so the inputs of the Evaluator (its
baseline) and of the Trainer (its warm-start base) change, and the re-run trains, evaluates and
pushes again. Leaving out the models a re-run would otherwise pick keeps it fully cached, and a
new span still compares with, and starts from, the previous blessed model. KFP v2 accepts only
TFX's own two strategies; see PipelineConfig.baseline_excludes_candidate.
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

MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"


class _LatestBlessedModelExcept(resolver.ResolverStrategy):
    """Inputs: `model` and `model_blessing` (all of them) and the `context_key` channel that
    decides which models to leave out; that channel is passed through unchanged."""

    context_key: str

    def excluded_model_ids(self, store, input_dict: dict[str, list[types.Artifact]]) -> set[int]:
        raise NotImplementedError

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        excluded = self.excluded_model_ids(store, input_dict)
        others = {
            MODEL_KEY: [m for m in input_dict[MODEL_KEY] if m.id not in excluded],
            BLESSING_KEY: list(input_dict[BLESSING_KEY]),
        }
        resolved = LatestBlessedModelStrategy().resolve_artifacts(store, others)
        resolved[self.context_key] = list(input_dict.get(self.context_key, []))
        return resolved


class LatestBlessedOtherThanCandidateStrategy(_LatestBlessedModelExcept):
    """The Evaluator's baseline: never the `candidate` (the Trainer's model) itself."""

    context_key = "candidate"

    def excluded_model_ids(self, store, input_dict):
        return {a.id for a in input_dict.get(self.context_key, [])}


class LatestBlessedModelOfOtherExamplesStrategy(_LatestBlessedModelExcept):
    """The Trainer's warm-start base: never a model trained on this run's `examples`."""

    context_key = "examples"

    def excluded_model_ids(self, store, input_dict):
        current_examples = {a.id for a in input_dict.get(self.context_key, [])}
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
        return {m.id for m in models if consumed[producer.get(m.id, -1)] & current_examples}
