"""Resolver strategy: the latest blessed model other than the candidate being evaluated.

With TFX's LatestBlessedModelStrategy, a second run on unchanged inputs evaluates the cached
candidate against itself (it was blessed by the first run), so the Evaluator and the Pusher run
again and push the same model as a new version. Excluding the candidate keeps such a run fully
cached, and compares a newly trained model with the previous blessed one, as before.
KFP v2 accepts only TFX's own two strategies; see PipelineConfig.baseline_excludes_candidate.
"""
from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"


class LatestBlessedOtherThanCandidateStrategy(resolver.ResolverStrategy):
    """Inputs: `candidate` (the Trainer's model), `model` and `model_blessing` (all of them)."""

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        candidate_ids = {a.id for a in input_dict.get(CANDIDATE_KEY, [])}
        others = {
            MODEL_KEY: [m for m in input_dict[MODEL_KEY] if m.id not in candidate_ids],
            BLESSING_KEY: list(input_dict[BLESSING_KEY]),
        }
        resolved = LatestBlessedModelStrategy().resolve_artifacts(store, others)
        resolved[CANDIDATE_KEY] = list(input_dict.get(CANDIDATE_KEY, []))
        return resolved
