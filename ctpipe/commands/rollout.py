"""`ctpipe rollout analyze`: compare the canary (or shadow) with stable from the gateway's
prediction log and/or metrics, recommend promote, wait or roll back (sequential tests with a
set false-rollback rate, rollout/verdict.py), and with `--apply` move the labels in
TF Serving's model config file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ctpipe.dataclass_flags import add_flags, from_flags

# Exit status when the recommendation is to roll back (a CronJob's failed run alerts).
ROLLBACK_EXIT = 3


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ctpipe.commands.track import follow_labels
    from ctpipe.rollout.thresholds import ROLLBACK, Thresholds
    from ctpipe.rollout.verdict import analyze, apply

    thresholds = from_flags(Thresholds, args)
    verdict = analyze(args.model_config, args.model, candidate=args.candidate, logs=args.logs,
                      metrics=args.metrics or (), window_seconds=args.window_seconds,
                      labels_path=args.labels, join_on_features=args.join_on_features,
                      thresholds=thresholds)
    changes = apply(verdict, args.model_config, args.model) if args.apply else []
    tracked = follow_labels(args) if changes else []
    if args.json:
        print(json.dumps({**verdict.to_json(), "applied": [c.describe() for c in changes],
                          "tracking": tracked}, indent=2))
    else:
        print(verdict.stable.describe())
        print(verdict.candidate.describe())
        if verdict.distance is not None:
            print(f"prediction distance (earth mover's): {verdict.distance:.4f}")
        for name, interval in verdict.tests.items():
            print(f"{name}: {verdict.candidate.role} - stable = {interval.describe()}")
        print(f"recommendation: {verdict.recommendation} ({'; '.join(verdict.reasons)})")
        for change in changes:
            print(f"applied: {change.describe()} (written to {args.model_config})")
        for line in tracked:
            print(line)
    return ROLLBACK_EXIT if verdict.recommendation == ROLLBACK else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from ctpipe.commands.track import add_tracking_flags
    from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
    from ctpipe.rollout.thresholds import Thresholds

    rollout = subparsers.add_parser("rollout", help="canary/shadow analysis and label moves")
    commands = rollout.add_subparsers(dest="rollout_command", required=True)
    analyze = commands.add_parser(
        "analyze", help="compare canary (or shadow) with stable; promote or roll back",
        description=f"Exit status 0 for promote or wait, {ROLLBACK_EXIT} for roll back.")
    analyze.add_argument("--model-config", type=Path, required=True,
                         help="TF Serving's model config file (labels stable, canary, shadow)")
    analyze.add_argument("--model", default=DEFAULT_MODEL_NAME)
    analyze.add_argument("--candidate", choices=("canary", "shadow"),
                         help="label to judge (default: canary if present, else shadow)")
    analyze.add_argument("--logs", help="prediction log prefix of the gateway(s): "
                                        "DIR/<model>, a glob may stand for pod folders")
    analyze.add_argument("--metrics", action="append", metavar="URL",
                         help="gateway metrics URL (repeatable; a host resolving to several "
                              "addresses is scraped at each)")
    analyze.add_argument("--window-seconds", type=float, default=0,
                         help="metrics: two scrapes N s apart (0: everything since the "
                              "gateways started); logs are always read from the candidate's "
                              "first logged answer on")
    analyze.add_argument("--labels", type=Path,
                         help="CSV of outcomes: request_id (as the gateway returned it), "
                              "example (the trip's position in its request, default 0) and "
                              "big_tipper (or tips and fare)")
    analyze.add_argument("--join-on-features", action="store_true",
                         help="fallback for labels without request ids: join the taxi "
                              "columns of --labels to logged trips by feature values (equal "
                              "trips collide; the output says this join was used)")
    add_flags(analyze, Thresholds, "threshold")
    analyze.add_argument("--apply", action="store_true",
                         help="move the labels: promote (stable := candidate) or roll back "
                              "(candidate label removed)")
    analyze.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_tracking_flags(analyze)
    analyze.set_defaults(handler=_cmd_analyze)
