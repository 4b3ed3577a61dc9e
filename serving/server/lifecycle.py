"""Model lifecycle as TF Serving runs it: poll base paths, load, warm up, swap, unload.

Availability is preserved: a version that is no longer wanted is unloaded only once a wanted
version is AVAILABLE (or every version folder is gone), so a failed new version leaves the old
one serving. Requests read an immutable `{version: Servable}` map that is replaced whole, so a
swap is atomic and a request keeps the version it resolved until it finishes.

Half-copied versions are never loaded. A version folder counts as ready when its contents (names,
sizes, modification times) are unchanged across a short settle interval AND `saved_model.pb`
(which the TFX Pusher copies last) is present. A folder that stays without `saved_model.pb` for
two polls is loaded anyway, so it fails with TF Serving's own message and shows in GetModelStatus.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from typing import Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2
from tensorflow_serving.config import model_server_config_pb2

from ctpipe.common import layout
from ctpipe.serving.server.errors import RequestError, StartupError, invalid, not_found
from ctpipe.serving.server.servable import LoadError, Servable, load_servable

log = logging.getLogger(__name__)

State = get_model_status_pb2.ModelVersionStatus.State
SETTLE_SECONDS = 0.1
_LABEL_NAME = re.compile(r"^[a-zA-Z0-9_]+$")


@dataclasses.dataclass
class VersionState:
    version: int
    path: str
    state: int = State.START
    error_code: int = 0
    error_message: str = ""
    attempts: int = 0
    next_attempt: float = 0.0

    @property
    def failed(self) -> bool:
        return self.state == State.END and self.error_code != 0


@dataclasses.dataclass
class ManagedModel:
    config: model_server_config_pb2.ModelConfig
    versions: dict[int, VersionState] = dataclasses.field(default_factory=dict)
    # Folder snapshots of versions not ready yet, from the previous poll (half-copy rule).
    pending: dict[int, tuple] = dataclasses.field(default_factory=dict)
    # Versions already judged completely written (not re-checked while their folder exists).
    confirmed: set[int] = dataclasses.field(default_factory=set)


def _snapshot(path: str) -> tuple:
    entries = []
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except FileNotFoundError:
                continue
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def _has_saved_model(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name))
               for name in ("saved_model.pb", "saved_model.pbtxt"))


class ModelManager:
    """Owns every model's versions; `resolve` is the request path, the rest is the poller's."""

    def __init__(self, *, max_num_load_retries: int = 5, load_retry_interval_micros: int = 60_000_000,
                 allow_version_labels_for_unavailable_models: bool = False,
                 warmup: Callable[[Servable], None] | None = None):
        self._max_retries = max_num_load_retries
        self._retry_interval = load_retry_interval_micros / 1e6
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._warmup = warmup
        self._models: dict[str, ManagedModel] = {}
        self._available: dict[str, dict[int, Servable]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._lock = threading.RLock()  # poller vs. config reloads; requests never take it
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- request path -------------------------------------------------------------------
    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        name = spec.name
        if not name:
            raise invalid("ModelSpec has no name specified.")
        versions = self._available.get(name, {})
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            version = spec.version.value
        elif choice == "version_label":
            label = spec.version_label
            labels = self._labels.get(name, {})
            if label not in labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = labels[label]
        else:
            if not versions:
                raise not_found(f"Servable not found for request: Latest({name})")
            return versions[max(versions)]
        servable = versions.get(version)
        if servable is None:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return servable

    def status(self, name: str, version: int | None) -> list[get_model_status_pb2.ModelVersionStatus]:
        model = self._models.get(name)
        if model is None or not model.versions:
            raise not_found(f"Could not find any versions of model {name}")
        states = dict(model.versions)
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        result = []
        for number in sorted(states, reverse=True):
            state = states[number]
            status = get_model_status_pb2.ModelVersionStatus(version=number, state=state.state)
            status.status.error_code = state.error_code
            status.status.error_message = state.error_message
            result.append(status)
        return result

    # ---- configuration ------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig,
                     *, startup: bool = False) -> None:
        """Replaces the whole model set (models left out are unloaded); waits for new models'
        first versions; then sets labels. Raises RequestError (or StartupError at start-up)."""
        configs = list(config.model_config_list.config)
        names = [c.name for c in configs]
        for model_config in configs:
            if not model_config.name:
                raise invalid("Model config has no name")
            if names.count(model_config.name) > 1:
                raise invalid(f"Illegal to list model {model_config.name} multiple times in "
                              "config list")
            if model_config.model_platform not in ("", "tensorflow"):
                raise invalid(f"Model {model_config.name} has unsupported model_platform "
                              f"{model_config.model_platform!r} (only tensorflow)")
            if not os.path.isdir(model_config.base_path):
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find base path {model_config.base_path} for "
                                   f"servable {model_config.name}")
            for label in model_config.version_labels:
                if not _LABEL_NAME.match(label):
                    raise invalid(f"Invalid version label: {label!r} (must match [a-zA-Z0-9_]+)")
        with self._lock:
            for name in list(self._models):
                if name not in names:
                    log.info("model %s left the config: unloading it", name)
                    self._unload_all(self._models.pop(name))
            new = []
            for model_config in configs:
                if model_config.name in self._models:
                    model = self._models[model_config.name]
                    if model.config != model_config:
                        # Policy or path changes take effect now, so new labels can use them.
                        model.config = model_config
                        self._poll_model(model)
                else:
                    self._models[model_config.name] = ManagedModel(model_config)
                    new.append(model_config.name)
        self._wait_for_first_versions(new, startup)
        with self._lock:
            self._set_labels(configs)

    def _wait_for_first_versions(self, names: list[str], startup: bool) -> None:
        waiting = set(names)
        warned = False
        while waiting and not self._stop.is_set():
            for name in list(waiting):
                with self._lock:
                    model = self._models.get(name)
                    if model is None:
                        waiting.discard(name)
                        continue
                    self._poll_model(model)
                    if self._available.get(name):
                        waiting.discard(name)
                    elif failed := [v for v in model.versions.values() if v.failed]:
                        message = (f"Loading servable: {{name: {name} version: {failed[0].version}}}"
                                   f" failed: {failed[0].error_message}")
                        raise (StartupError(message) if startup
                               else RequestError(grpc.StatusCode.UNKNOWN, message))
            if waiting:
                if not warned:
                    log.warning("waiting for a loadable version of %s", sorted(waiting))
                    warned = True
                self._stop.wait(0.2)

    def _set_labels(self, configs) -> None:
        for model_config in configs:
            name = model_config.name
            old = self._labels.get(name, {})
            available = self._available.get(name, {})
            for label, version in model_config.version_labels.items():
                if version in available:
                    continue
                if self._allow_unavailable_labels and label not in old:
                    continue
                raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"Request to assign label to version {version} of model "
                                   f"{name}, which is not currently available for inference")
        self._labels = {c.name: dict(c.version_labels) for c in configs}
        log.info("version labels: %s", self._labels)

    # ---- polling ------------------------------------------------------------------------
    def poll_all(self) -> None:
        with self._lock:
            for model in list(self._models.values()):
                self._poll_model(model)

    def start_polling(self, every_seconds: float) -> None:
        if every_seconds <= 0:
            log.info("file system polling off (--file_system_poll_wait_seconds=%s)", every_seconds)
            return
        self.run_every(every_seconds, self.poll_all, "version-poller")

    def run_every(self, seconds: float, action: Callable[[], None], name: str) -> None:
        def loop():
            while not self._stop.wait(seconds):
                try:
                    action()
                except Exception:  # noqa: BLE001 - a poll failure must not stop serving
                    log.exception("%s failed; retrying in %s s", name, seconds)
        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _ready_versions(self, model: ManagedModel, folders: dict[int, str]) -> dict[int, str]:
        model.confirmed &= set(folders)
        ready, first_look = {}, {}
        for version, path in folders.items():
            if version in model.confirmed:
                ready[version] = path
            else:
                first_look[version] = _snapshot(path)
        if first_look:
            time.sleep(SETTLE_SECONDS)
        for version, before in first_look.items():
            path = folders[version]
            now = _snapshot(path)
            stable = now == before
            if stable and (_has_saved_model(path) or model.pending.get(version) == now):
                ready[version] = path
                model.confirmed.add(version)
                model.pending.pop(version, None)
            else:
                if model.pending.get(version) != now:
                    log.info("version %s of %s is still being written: waiting", version,
                             model.config.name)
                model.pending[version] = now
        return ready

    def _aspired(self, model: ManagedModel, ready: dict[int, str]) -> list[int]:
        policy = model.config.model_version_policy
        kind = policy.WhichOneof("policy_choice")
        usable = sorted((v for v in ready if not model.versions.get(v, VersionState(v, "")).failed),
                        reverse=True)
        if kind == "all":
            return usable
        if kind == "specific":
            return [v for v in usable if v in set(policy.specific.versions)]
        count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
        newest = sorted(ready, reverse=True)[:count]
        return [v for v in newest if v in usable]

    def _poll_model(self, model: ManagedModel) -> None:
        name = model.config.name
        try:
            folders = layout.version_folders(model.config.base_path)
        except FileNotFoundError:
            folders = {}  # the base path is gone: so is every version
        ready = self._ready_versions(model, folders)
        aspired = self._aspired(model, ready)
        for version in aspired:
            state = model.versions.get(version)
            if state is None or (state.state == State.END and not state.failed):
                state = model.versions[version] = VersionState(version, ready[version])
            if state.state in (State.START, State.LOADING) and time.monotonic() >= state.next_attempt:
                self._load(model, state)
        available = self._available.get(name, {})
        if not aspired and folders:
            return  # nothing loadable yet (or only failed versions): keep serving what we have
        if any(v in available for v in aspired) or not folders:
            for version in [v for v in available if v not in aspired]:
                self._unload(model, version)

    def _load(self, model: ManagedModel, state: VersionState) -> None:
        name = model.config.name
        state.state = State.LOADING
        state.attempts += 1
        log.info("loading version %s of %s from %s (attempt %d)", state.version, name, state.path,
                 state.attempts)
        started = time.perf_counter()
        try:
            servable = load_servable(name, state.version, state.path)
            if self._warmup is not None:
                self._warmup(servable)
        except (LoadError, RequestError) as err:
            message = err.message if isinstance(err, RequestError) else str(err)
            if state.attempts > self._max_retries:
                log.error("version %s of %s failed to load, giving up: %s", state.version, name,
                          message)
                state.state, state.error_code, state.error_message = State.END, 2, message
            else:
                log.warning("version %s of %s failed to load (retry in %.1f s): %s",
                            state.version, name, self._retry_interval, message)
                state.next_attempt = time.monotonic() + self._retry_interval
                state.error_message = message
            return
        versions = dict(self._available.get(name, {}))
        versions[state.version] = servable
        self._available = {**self._available, name: versions}
        state.state, state.error_code, state.error_message = State.AVAILABLE, 0, ""
        log.info("version %s of %s is AVAILABLE (loaded in %.2f s)", state.version, name,
                 time.perf_counter() - started)

    def _unload(self, model: ManagedModel, version: int) -> None:
        name = model.config.name
        state = model.versions[version]
        state.state = State.UNLOADING
        versions = dict(self._available.get(name, {}))
        versions.pop(version, None)
        self._available = {**self._available, name: versions}
        state.state, state.error_code, state.error_message = State.END, 0, ""
        log.info("version %s of %s unloaded", version, name)

    def _unload_all(self, model: ManagedModel) -> None:
        for version in list(self._available.get(model.config.name, {})):
            self._unload(model, version)
        self._available = {k: v for k, v in self._available.items() if k != model.config.name}
