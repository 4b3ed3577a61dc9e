"""What the rollout analysis knows of one version (stable or the candidate): what the
readers (`prediction_logs`, `metrics`) fill in and the verdict judges."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class VersionFigures:
    """One version's figures; None where the sources given cannot tell."""

    role: str
    version: int
    requests: int = 0
    errors: int | None = None
    p99_seconds: float | None = None
    # Latency histogram from the metrics: (upper bounds, cumulative counts).
    latency: tuple[np.ndarray, np.ndarray] | None = None
    probabilities: np.ndarray | None = None  # from the logs
    histogram: np.ndarray | None = None  # from the metrics: counts per 0.05 bucket
    losses: np.ndarray | None = None  # log loss of each labelled trip it answered
    auc: float | None = None
    auc_standard_error: float | None = None

    @property
    def labelled(self) -> int:
        return 0 if self.losses is None else len(self.losses)

    @property
    def error_rate(self) -> float | None:
        return None if self.errors is None or not self.requests else self.errors / self.requests

    def describe(self) -> str:
        parts = [f"{self.role} (version {self.version}): {self.requests} requests"]
        if self.error_rate is not None:
            parts.append(f"error rate {self.error_rate:.2%}")
        if self.p99_seconds is not None:
            parts.append(f"p99 {self.p99_seconds * 1e3:.1f} ms")
        values = self.probabilities
        if values is not None and len(values):
            parts.append(f"mean probability {values.mean():.3f}")
        if self.losses is not None and len(self.losses):
            parts.append(f"log loss {self.losses.mean():.4f} on {self.labelled} labelled trips")
        if self.auc is not None:
            parts.append(f"AUC {self.auc:.4f} (±{self.auc_standard_error:.4f})")
        return ", ".join(parts)
