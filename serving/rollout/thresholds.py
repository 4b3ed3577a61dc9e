"""The verdicts and thresholds of the rollout analysis: a module that imports nothing, so that
`ctpipe`'s parser can show the defaults without loading protos or numpy."""
from __future__ import annotations

import dataclasses

PROMOTE, ROLLBACK, WAIT = "promote", "rollback", "wait"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When a canary (or shadow) is promoted, rolled back or waited for, against stable."""

    min_requests: int = 200  # per version, below which the analysis waits
    max_error_rate_increase: float = 0.01  # over stable's error rate
    max_p99_ratio: float = 1.5  # times stable's p99 latency
    max_prediction_shift: float = 0.05  # distance between the two prediction distributions
    # AUC may fall this much below stable's, once both have this many labelled requests.
    max_auc_drop: float = 0.02
    min_labelled: int = 100
