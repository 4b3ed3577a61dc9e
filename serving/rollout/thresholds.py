"""The verdicts and thresholds of the rollout analysis: a module that imports nothing, so that
`ctpipe`'s parser can show the defaults without loading protos or numpy."""
from __future__ import annotations

import dataclasses

PROMOTE, ROLLBACK, WAIT = "promote", "rollback", "wait"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    min_requests: int = 200
    max_error_rate_increase: float = 0.01
    max_p99_ratio: float = 1.5
    max_prediction_shift: float = 0.05
    max_auc_drop: float = 0.02
    min_labelled: int = 100
