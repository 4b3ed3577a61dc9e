"""Delivery of tracking records: written to an outbox first, then sent, oldest first.

An entry is one JSON file (`<time>.json`, written atomically) naming its tracking URI, so
it can be sent later from anywhere that reaches the folder (`ctpipe track sync`). The folder
is local, mounted, or a bucket URI (a Kubeflow run's outbox is under its pipeline root; only
bucket URIs load TensorFlow, for its file systems). Sending an
entry removes its file; a tracking server that does not answer keeps its entries (and every
later one for it, so records arrive in order) and is reported once per delivery. A server that
answers but refuses an entry (a bad request, no permission) is an error: it is raised, naming
the file that keeps the entry.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from ctpipe.common import storage
from ctpipe.common.errors import UserError
from ctpipe.common.files import write_atomically
from ctpipe.tracking import store
from ctpipe.tracking.record import RunRecord

log = logging.getLogger(__name__)

RUN, LABELS = "run", "labels"


class TrackingRefused(UserError):
    """The tracking server answered, but refused a record; the message names where it is kept."""


@dataclasses.dataclass
class Delivery:
    done: list[str]  # what the sent entries did, one line each
    sent: int
    kept: int
    unreachable: dict[str, str]  # tracking URI -> why it was not reached

    def report(self, outbox: str | Path) -> list[str]:
        """What to tell the user: the changes, and each unreachable server once."""
        lines = list(self.done)
        for uri, reason in self.unreachable.items():
            lines.append(f"MLflow at {uri} is unreachable ({reason}): {self.kept} record(s) "
                         f"kept in {outbox}, sent by the next run or `ctpipe track sync "
                         f"--outbox {outbox}`")
        return lines


def add(outbox: str | Path, entry: dict[str, Any]) -> str:
    """Keeps `entry` (with its `tracking_uri`) until it is sent; returns its file."""
    outbox = str(outbox)
    taken = set(pending(outbox))
    stamp = time.time_ns()
    while posixpath.join(outbox, f"{stamp:020d}.json") in taken:
        stamp += 1
    path = posixpath.join(outbox, f"{stamp:020d}.json")
    write_atomically(path, json.dumps(entry, indent=1, sort_keys=True) + "\n")
    return path


def pending(outbox: str | Path) -> list[str]:
    """The kept entries' files, oldest first."""
    outbox = str(outbox)
    if "://" in outbox:
        return sorted(storage.gfile().glob(posixpath.join(outbox, "*.json")))
    return sorted(str(path) for path in Path(outbox).glob("*.json"))


def _read(path: str) -> dict[str, Any]:
    if "://" in path:
        with storage.gfile().GFile(path) as handle:
            return json.loads(handle.read())
    return json.loads(Path(path).read_text())


def _remove(path: str) -> None:
    if "://" in path:
        storage.gfile().remove(path)
    else:
        Path(path).unlink()


def unreachable_reason(uri: str, timeout: float) -> str | None:
    """Why an HTTP tracking server does not answer its health check in time, or None. Other
    stores (a database, a file) have no such check: their errors show when writing."""
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"health check answered HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return str(getattr(err, "reason", err))
    return None


def _transient(err: Exception) -> bool:
    """Whether a failed write means "not reachable now" rather than "refused"."""
    if isinstance(err, (OSError, RequestsConnectionError, Timeout)):
        return True
    return isinstance(err, MlflowException) and err.get_http_status_code() >= 500


def _send(entry: dict[str, Any]) -> list[str]:
    mlflow = store.client(entry["tracking_uri"])
    if entry["kind"] == RUN:
        return store.write_run(mlflow, RunRecord.from_json(entry["record"]),
                               entry.get("artifact_location", ""))
    if entry["kind"] == LABELS:
        return store.follow_labels(mlflow, entry["model"],
                                   {label: int(v) for label, v in entry["labels"].items()})
    raise ValueError(f"unknown tracking record kind {entry['kind']!r}")


def deliver(outbox: str | Path, timeout: float) -> Delivery:
    """Sends every kept entry, oldest first; keeps those whose server is unreachable."""
    delivery = Delivery([], 0, 0, {})
    for path in pending(outbox):
        entry = _read(path)
        uri = entry["tracking_uri"]
        if uri not in delivery.unreachable:
            reason = unreachable_reason(uri, timeout)
            if reason is None:
                try:
                    delivery.done += _send(entry)
                except Exception as err:
                    if not _transient(err):
                        raise TrackingRefused(f"MLflow at {uri} refused the {entry['kind']} "
                                              f"record kept in {path}: {err}") from err
                    reason = str(err).splitlines()[0]
                else:
                    _remove(path)
                    delivery.sent += 1
                    continue
            delivery.unreachable[uri] = reason
            log.warning("MLflow at %s unreachable: %s", uri, reason)
        delivery.kept += 1
    return delivery


def send(outbox: str | Path, entry: dict[str, Any], timeout: float) -> list[str]:
    """Keeps `entry`, then delivers everything kept; what to tell the user, one line each."""
    add(outbox, entry)
    return deliver(outbox, timeout).report(outbox)
