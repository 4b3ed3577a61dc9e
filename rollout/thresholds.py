"""The verdicts and thresholds of the rollout analysis: a module that imports only the leaf
`ctpipe.common.errors`, so that `ctpipe`'s parser can show the defaults without loading protos or
numpy."""
from __future__ import annotations

import dataclasses

from ctpipe.common.errors import UserError

PROMOTE, ROLLBACK, WAIT = "promote", "rollback", "wait"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When a canary (or shadow) is promoted, rolled back or waited for, against stable."""

    # The chance that a canary as good as stable is ever rolled back, over all looks.
    false_rollback_rate: float = 0.01
    min_requests: int = 200  # per version, below which the analysis waits
    max_error_rate_increase: float = 0.01  # over stable's error rate
    max_p99_ratio: float = 1.5  # times stable's p99 latency
    max_prediction_shift: float = 0.05  # the mean predicted probability may move this much
    # Promotion needs the canary's log loss shown below stable's + this (nats per trip),
    # once both have `min_labelled` labelled trips (when labels are given).
    max_loss_increase: float = 0.05
    min_labelled: int = 200

    def __post_init__(self) -> None:
        if not 0 < self.false_rollback_rate < 1:
            raise UserError("--false-rollback-rate must be within (0, 1), got "
                            f"{self.false_rollback_rate}")
        for name in ("max_error_rate_increase", "max_prediction_shift", "max_loss_increase"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got "
                                f"{getattr(self, name)}")
