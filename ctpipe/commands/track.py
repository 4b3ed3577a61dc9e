"""`ctpipe track sync`: send the tracking records an unreachable MLflow server missed
(ctpipe.tracking.outbox); and the `--tracking` flag of the commands that move TF Serving's labels,
whose registry aliases follow them."""
from __future__ import annotations

import argparse
from pathlib import Path

from ctpipe.common.errors import UserError

DEFAULT_TIMEOUT = 5.0


def _cmd_sync(args: argparse.Namespace) -> int:
    from ctpipe.tracking import outbox
    from ctpipe.tracking.options import workspace_outbox

    folder = args.outbox or str(workspace_outbox(args.workspace))
    if not outbox.pending(folder):
        print(f"nothing to send: {folder} holds no tracking record")
        return 0
    delivery = outbox.deliver(folder, args.timeout)
    for line in delivery.done:
        print(line)
    print(f"sent {delivery.sent} record(s), {delivery.kept} kept in {folder}")
    if delivery.kept:
        reasons = "; ".join(f"MLflow at {uri}: {why}" for uri, why in delivery.unreachable.items())
        raise UserError(f"{delivery.kept} record(s) not sent ({reasons}): run it again when "
                        "the tracking server is back")
    return 0


def add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking", metavar="URI",
                        help="MLflow tracking URI: move the registry aliases of the model with "
                             "its labels (stable -> champion, canary/shadow -> challenger)")
    parser.add_argument("--tracking-outbox", type=Path, metavar="DIR",
                        help="where records wait while MLflow is unreachable (default: "
                             "tracking-outbox beside the model config file)")


def follow_labels(args: argparse.Namespace) -> list[str]:
    """After a label change: the registry aliases follow the labels now in the model config;
    what was done, one line each (nothing without --tracking)."""
    if not args.tracking:
        return []
    from ctpipe.serving.client import version_labels
    from ctpipe.tracking import outbox
    from ctpipe.tracking.options import OUTBOX_FOLDER

    labels = version_labels.labels_of(args.model_config, args.model)
    folder = args.tracking_outbox or Path(args.model_config).resolve().parent / OUTBOX_FOLDER
    return [f"tracking: {line}" for line in outbox.send(folder, {
        "kind": outbox.LABELS, "tracking_uri": args.tracking, "model": args.model,
        "labels": labels}, DEFAULT_TIMEOUT)]


def register(commands: argparse._SubParsersAction) -> None:
    track = commands.add_parser("track", help="MLflow experiment tracking")
    track_commands = track.add_subparsers(dest="track_command", required=True)
    sync = track_commands.add_parser(
        "sync", help="send the records kept while the tracking server was unreachable")
    where = sync.add_mutually_exclusive_group(required=True)
    where.add_argument("--workspace", help="a workspace of `ctpipe run` (its tracking-outbox/)")
    where.add_argument("--outbox", help="an outbox folder or bucket URI (beside a model config "
                                        "file; a Kubeflow run's: <pipeline root>/tracking-outbox)")
    sync.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                      help="seconds a tracking server may take to answer its health check")
    sync.set_defaults(handler=_cmd_sync)
