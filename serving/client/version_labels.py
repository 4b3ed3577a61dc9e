"""Version labels (stable/canary) in TF Serving's text ModelServerConfig file: the client's
side of the model config (the server reads the same file with `ctpipe.serving.server.config_files`).

The server (real TF Serving with --model_config_file_poll_wait_seconds, or `ctpipe serve`)
re-reads the file on its own, so moving a label needs no restart. The file is replaced
atomically (`ctpipe.common.files`): a poll never reads half a config. Free of TensorFlow: the
config is parsed with the client's own message classes.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from ctpipe.common import layout
from ctpipe.common.files import write_atomically
from ctpipe.common.policies import CANARY, ROLLOUTS, STABLE
from ctpipe.serving.client import protos
from ctpipe.serving.client.errors import ModelConfigError

log = logging.getLogger(__name__)

LABEL_PATTERN = re.compile(r"[a-zA-Z0-9_]+")


@dataclasses.dataclass(frozen=True)
class LabelChange:
    model: str
    label: str
    previous_version: int | None
    version: int | None  # None: the label was removed

    def describe(self) -> str:
        before = "unset" if self.previous_version is None else str(self.previous_version)
        after = "removed" if self.version is None else str(self.version)
        return f"{self.model}: label '{self.label}' {before} -> {after}"


def read_config(path: Path) -> Any:
    """Parses a text ModelServerConfig; it must list models (model_config_list)."""
    if not path.is_file():
        raise ModelConfigError(f"model config file not found: {path}")
    try:
        config = text_format.Parse(path.read_text(), protos.ModelServerConfig())
    except text_format.ParseError as err:
        raise ModelConfigError(f"{path}: not a valid ModelServerConfig: {err}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ModelConfigError(f"{path} has no model_config_list")
    return config


def labels_of(path: str | Path, model: str) -> dict[str, int]:
    """The labels of `model` in the config file at `path`: {label: version}."""
    return dict(model_entry(read_config(Path(path)), model).version_labels)


def write_config(path: Path, config: Any) -> None:
    """Replaces the file atomically; the old file stays intact if anything fails."""
    write_atomically(path, text_format.MessageToString(config))


def model_entry(config: Any, model: str) -> Any:
    for entry in config.model_config_list.config:
        if entry.name == model:
            return entry
    known = ", ".join(e.name for e in config.model_config_list.config) or "none"
    raise ModelConfigError(f"model '{model}' is not in the config (models: {known})")


def version_directories(base_path: str) -> list[int]:
    """Versions present under a base path, as TF Serving finds them (`ctpipe.common.layout`)."""
    try:
        return sorted(layout.version_folders(base_path))
    except FileNotFoundError:
        raise ModelConfigError(f"model base path not found: {base_path}") from None


def _check_policy_serves(entry: Any, version: int, present: list[int]) -> None:
    """TF Serving only lets a label point at a loaded version: the version policy must keep it."""
    policy = entry.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "specific":
        if version not in policy.specific.versions:
            policy.specific.versions.append(version)
            log.info("added version %d to the specific version policy of %s", version, entry.name)
    elif kind != "all":
        newest = sorted(present)[-max(policy.latest.num_versions, 1):]
        if version not in newest:
            raise ModelConfigError(
                f"version {version} of '{entry.name}' is not served: its version policy keeps "
                f"the latest {len(newest)} ({', '.join(map(str, newest))}); use a "
                "`specific { versions: ... }` policy to label older versions")


def set_label(path: Path, model: str, label: str, version: int) -> LabelChange:
    """Points `label` of `model` at `version` (which must exist under the base path)."""
    return relabel(path, model, {label: version})[0]


def rollback(path: Path, model: str, label: str = STABLE,
             version: int | None = None) -> LabelChange:
    """Moves `label` back: to `version`, or else to the newest version older than its current
    one. Only the label moves; no model folder is deleted."""
    if version is None:
        entry = model_entry(read_config(path), model)
        if label not in entry.version_labels:
            raise ModelConfigError(f"model '{model}' has no label '{label}' to roll back")
        current = entry.version_labels[label]
        older = [v for v in version_directories(entry.base_path) if v < current]
        if not older:
            raise ModelConfigError(f"no version of '{model}' older than {current} "
                                   f"under {entry.base_path}")
        version = older[-1]
    return set_label(path, model, label, version)


def write_initial_config(path: Path, model: str, base_path: str,
                         labels: dict[str, int] | None = None) -> Any:
    """A one-model config; with labels, a specific policy serving exactly the labelled versions
    (the canary layout: stable and canary loaded side by side)."""
    config = protos.ModelServerConfig()
    entry = config.model_config_list.config.add(name=model, base_path=base_path,
                                                model_platform="tensorflow")
    entry.model_version_policy.latest.num_versions = 1
    if labels:
        for label, version in labels.items():
            if not LABEL_PATTERN.fullmatch(label):
                raise ModelConfigError(f"label name {label!r} must match [a-zA-Z0-9_]+")
            entry.version_labels[label] = version
        entry.model_version_policy.specific.versions.extend(sorted(set(labels.values())))
    write_config(path, config)
    return config


def label_pushed_version(path: Path, model: str, version: int, rollout: str) -> list[LabelChange]:
    """Labels a version the pipeline just pushed, as its `rollout` asks; the Pusher calls this.

    - `direct`: the version becomes `stable` (all default traffic) and the `canary` label is
      removed, so no older canary keeps a share of that traffic;
    - `canary` / `shadow`: the version gets that label and `stable` stays where it is (with no
      `stable` yet, the first version becomes `stable` whatever the rollout: there is nothing
      to compare it with).

    The version policy becomes `specific`, listing every labelled version plus the stable one
    being replaced (so `ctpipe rollback` finds it loaded): TF Serving only lets labels point
    at loaded versions, and a `latest` policy would unload an older stable once two newer
    versions arrive. Versions no label needs any more leave the list. The file is replaced
    atomically; on any error nothing is written. Returns the label changes made.
    """
    if rollout not in ROLLOUTS:
        raise ModelConfigError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}")
    config = read_config(path)
    entry = model_entry(config, model)
    present = version_directories(entry.base_path)
    if version not in present:
        raise ModelConfigError(f"version {version} of '{model}' not found under "
                               f"{entry.base_path} (versions: {present or 'none'})")
    labels = entry.version_labels
    previous_stable = labels.get(STABLE)
    label = STABLE if rollout == "direct" or previous_stable is None else rollout
    changes = [LabelChange(model, label, labels.get(label), version)]
    labels[label] = version
    if label == STABLE and CANARY in labels:
        changes.append(LabelChange(model, CANARY, labels[CANARY], None))
        del labels[CANARY]
    kept = set(labels.values()) | ({previous_stable} if previous_stable is not None else set())
    entry.model_version_policy.specific.versions[:] = sorted(kept)
    write_config(path, config)
    for change in changes:
        log.info("%s in %s", change.describe(), path)
    return changes


def relabel(path: Path, model: str, changes: dict[str, int | None]) -> list[LabelChange]:
    """Moves several labels in one atomic write (None removes a label), e.g. a promotion:
    {"stable": canary's version, "canary": None}. Versions must exist under the base path
    and stay loaded (as `set_label` checks); on any error nothing is written."""
    config = read_config(path)
    entry = model_entry(config, model)
    present = version_directories(entry.base_path)
    done = []
    for label, version in changes.items():
        if not LABEL_PATTERN.fullmatch(label):
            raise ModelConfigError(f"label name {label!r} must match [a-zA-Z0-9_]+")
        previous = entry.version_labels.get(label)
        if version is None:
            if label not in entry.version_labels:
                raise ModelConfigError(f"model '{model}' has no label '{label}' to remove")
            del entry.version_labels[label]
        else:
            if version not in present:
                raise ModelConfigError(f"version {version} of '{model}' not found under "
                                       f"{entry.base_path} (versions: {present or 'none'})")
            _check_policy_serves(entry, version, present)
            entry.version_labels[label] = version
        done.append(LabelChange(model, label, previous, version))
    write_config(path, config)
    for change in done:
        log.info("%s in %s", change.describe(), path)
    return done
