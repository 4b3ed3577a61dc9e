"""The choices of the pipeline's configuration that steps and libraries check again when they
get them as plain strings (a component parameter, a function argument): spelled once, here."""
from __future__ import annotations

from typing import Literal, get_args

# What a drifted feature does to a run: a warning (the run goes on) or a stop before training.
DriftPolicy = Literal["warn", "stop"]
DRIFT_POLICIES: tuple[str, ...] = get_args(DriftPolicy)
# How a pushed version reaches traffic: it becomes `stable` (direct), or the `canary` or
# `shadow` label of the gateway while `stable` stays.
Rollout = Literal["direct", "canary", "shadow"]
ROLLOUTS: tuple[str, ...] = get_args(Rollout)
# TF Serving's version labels that the gateway, the rollout and the tracking registry follow.
STABLE, CANARY, SHADOW = "stable", "canary", "shadow"
# The files of a span folder: `span-N/*.csv` or `span-N/*.parquet`.
DataFormat = Literal["csv", "parquet"]
DATA_FORMATS: tuple[str, ...] = get_args(DataFormat)
