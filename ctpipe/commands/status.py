"""`ctpipe status`: a workspace's recent runs, pushed versions and drift per span
(reporting/status.py reads them from ML Metadata)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ctpipe.common.errors import UserError


def _cmd_status(args: argparse.Namespace) -> None:
    if args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    from ctpipe.reporting import status

    print(status.format_status(Path(args.workspace), limit=args.limit))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="recent runs, pushes, blessed model")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--limit", type=int, default=10, help="runs to show")
    parser.set_defaults(handler=_cmd_status)
