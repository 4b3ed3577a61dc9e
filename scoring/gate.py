"""The sanity gate between scoring and publishing: scores nobody should use are never
published.

- Row count: every row read was scored, and at least `min_rows` of them.
- NaN rate: at most `max_nan_rate` of the scores are NaN (or infinite).
- Prediction distribution: a model whose outputs do not vary is refused outright. Against the
  model's own predictions on its eval split (`eval_predictions` in the push record the
  pipeline writes beside a pushed version, `assets.extra/ctpipe/push.json`): the spread (std)
  within a factor of `max_std_ratio`, and each recorded quantile within `max_quantile_shift`.
  Versions pushed before the record carried eval predictions are only checked for constant
  output, and the gate says so.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

from ctpipe.common.layout import PUSH_RECORD_FILE

if TYPE_CHECKING:  # Beam and TensorFlow: `ctpipe score`'s flags (GateSettings) need neither
    from ctpipe.scoring.job import Stats

# Below this the outputs do not vary: a constant model, or inputs the model cannot see.
CONSTANT_STD = 1e-4


@dataclasses.dataclass(frozen=True)
class GateSettings:
    """What a scoring run must show before its output is published (module docstring)."""

    min_rows: int = 1  # every row read scored, and at least this many
    max_nan_rate: float = 0.0  # share of NaN or infinite scores
    # The scores' spread and quantiles against the model's eval predictions (push record).
    max_std_ratio: float = 4.0
    max_quantile_shift: float = 0.25


@dataclasses.dataclass
class GateResult:
    passed: bool
    problems: list[str]
    notes: list[str]
    figures: dict[str, Any]


def eval_predictions(model_dir: str) -> dict[str, Any] | None:
    """The push record's eval-prediction summary of a pushed version, if it has one."""
    path = os.path.join(model_dir, PUSH_RECORD_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        summary = json.load(handle).get("eval_predictions")
    # A summary of an eval split without finite predictions has no distribution.
    return summary if summary and "std" in summary and "quantiles" in summary else None


def check(stats: Stats, rows_read: int, reference: dict[str, Any] | None,
          settings: GateSettings = GateSettings()) -> GateResult:
    problems, notes = [], []
    figures = {"rows": stats.rows, "rows_read": rows_read, "nan_rate": None, "mean": None,
               "std": None, "quantiles": {}}
    if stats.rows != rows_read:
        problems.append(f"{rows_read} rows read but {stats.rows} scored")
    if stats.rows < settings.min_rows:
        problems.append(f"{stats.rows} rows scored, at least {settings.min_rows} required")
    if stats.rows:
        nan_rate = stats.nan / stats.rows
        figures["nan_rate"] = nan_rate
        if nan_rate > settings.max_nan_rate:
            problems.append(f"NaN rate {nan_rate:.2%} above {settings.max_nan_rate:.2%}")
    if stats.finite:
        figures.update(mean=stats.mean, std=stats.std, quantiles={
            q: stats.quantile(float(q)) for q in ("0.01", "0.5", "0.99")})
        if stats.std < CONSTANT_STD:
            problems.append(f"the scores do not vary (std {stats.std:.6f}, all about "
                            f"{stats.mean:.4f}): the model outputs a constant")
    if reference is None:
        notes.append("the model's push record has no eval predictions: the distribution was "
                     "only checked for constant output")
    elif stats.finite and stats.std >= CONSTANT_STD:
        ratio = stats.std / reference["std"] if reference["std"] else float("inf")
        if not 1 / settings.max_std_ratio <= ratio <= settings.max_std_ratio:
            problems.append(f"score std {stats.std:.4f} is {ratio:.2f}x the eval predictions' "
                            f"{reference['std']:.4f} (allowed 1/{settings.max_std_ratio:g} to "
                            f"{settings.max_std_ratio:g}x)")
        for q, expected in sorted(reference.get("quantiles", {}).items()):
            got = stats.quantile(float(q))
            if abs(got - expected) > settings.max_quantile_shift:
                problems.append(f"quantile {q} of the scores is {got:.3f}, the eval "
                                f"predictions' {expected:.3f} (allowed ±"
                                f"{settings.max_quantile_shift})")
        figures["eval_predictions"] = reference
    return GateResult(not problems, problems, notes, figures)
