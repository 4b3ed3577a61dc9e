"""The gateway's traffic policy: which version label a request that names none goes to.

- No version or label: `stable`, never implicitly the newest version (TF Serving's own
  default). A model without a `stable` label is refused, naming the file to fix.
- `canary` (when the model has that label): `canary_percent` % of those requests. With a route
  key (gRPC metadata / HTTP header `x-route-key`) the choice is sticky: the key is hashed to a
  point in [0, 100) and the canary takes the keys below its share, so a client keeps its
  version while the share stays, and raising the share only moves keys from stable to canary.
  Without one the request id (`x-request-id`, the client's or one the gateway assigns) is
  hashed the same way: random per request for assigned ids, the same side for an id that is
  retried.
- `shadow` (when the model has that label): a mirrored copy of those requests.
- Requests naming a version or label are not routed (they pass through unchanged).

Labels come from TF Serving's model config file (the one the backend polls and `ctpipe label`,
`ctpipe rollback`, `ctpipe rollout analyze --apply` and the Pusher edit), re-read when it
changes, or from a HandleReloadConfigRequest passing through the gateway.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from ctpipe.common.policies import CANARY, SHADOW, STABLE
from ctpipe.serving.client import version_labels

log = logging.getLogger(__name__)

ROUTE_KEY = "x-route-key"
# After the canary's version answers "not found", default traffic skips it this long.
CANARY_PAUSE_SECONDS = 5.0


class NoStableVersion(Exception):
    """The model has no `stable` label: there is nothing to send default traffic to."""


@dataclasses.dataclass(frozen=True)
class Route:
    """Where one default-path request goes: `label` answers, `shadow` gets a copy."""

    label: str
    shadow: bool


def key_point(key: str) -> float:
    """A route key's stable point in [0, 100)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


class Router:
    """Labels per model and the canary share; `route` is called on every default request."""

    def __init__(self, config_path: Path, canary_percent: float):
        if not 0 <= canary_percent <= 100:
            raise ValueError(f"canary_percent must be within [0, 100], got {canary_percent}")
        self.config_path = config_path
        self.canary_percent = canary_percent
        self._labels: dict[str, dict[str, int]] = {}
        self._canary_paused_until: dict[str, float] = {}
        # At start a missing or broken file is an error (ModelConfigError names it).
        self._text = config_path.read_text() if config_path.is_file() else None
        self.apply(version_labels.read_config(config_path))

    def reload(self) -> bool:
        """Re-reads the model config file if its text changed; True when labels changed. A
        broken file keeps the labels in force (and is logged), as TF Serving keeps its config."""
        text = self.config_path.read_text()
        if text == self._text:
            return False
        self._text = text
        try:
            config = version_labels.read_config(self.config_path)
        except version_labels.ModelConfigError as err:
            log.error("model config rejected, keeping the labels in force: %s", err)
            return False
        return self.apply(config)

    def apply(self, config: Any) -> bool:
        """Takes the labels of a ModelServerConfig (the file's, or a reload request's)."""
        labels = {entry.name: dict(entry.version_labels)
                  for entry in config.model_config_list.config}
        changed = labels != self._labels
        if changed:
            log.info("version labels: %s", labels)
            self._labels = labels
            self._canary_paused_until.clear()
        return changed

    def models(self) -> list[str]:
        return sorted(self._labels)

    def version(self, model: str, label: str) -> int | None:
        return self._labels.get(model, {}).get(label)

    def route(self, model: str, key: str) -> Route:
        labels = self._labels.get(model, {})
        if STABLE not in labels:
            raise NoStableVersion(
                f"ctpipe gateway: model {model} has no '{STABLE}' version label in "
                f"{self.config_path}; label a version stable (ctpipe label --label stable) or "
                "name a version or label in the request")
        label = STABLE
        if CANARY in labels and self.canary_percent > 0 and (
                time.monotonic() >= self._canary_paused_until.get(model, 0.0)):
            if key_point(key) < self.canary_percent:
                label = CANARY
        return Route(label, SHADOW in labels)

    def pause_canary(self, model: str) -> None:
        """The canary's version is gone from the backend: stable takes its share for a while
        (until then, or until the labels change)."""
        self._canary_paused_until[model] = time.monotonic() + CANARY_PAUSE_SECONDS
        log.warning("canary of %s did not answer (its version is not served): sending its "
                    "share to stable for %.0f s", model, CANARY_PAUSE_SECONDS)
