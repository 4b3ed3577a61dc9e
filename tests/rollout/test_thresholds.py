"""The rollout thresholds refuse values that make no sense, naming the flag."""
from __future__ import annotations

import pytest

from ctpipe.common.errors import UserError
from ctpipe.rollout.thresholds import Thresholds


def test_thresholds_are_checked():
    with pytest.raises(UserError, match="--false-rollback-rate must be within"):
        Thresholds(false_rollback_rate=0)
    with pytest.raises(UserError, match="--max-loss-increase must be positive"):
        Thresholds(max_loss_increase=0)
