"""`ctpipe lineage VERSION`: the data, statistics, schema, code, run, evaluation, push, labels
and prediction logs of one pushed version (reporting/lineage.py reads them)."""
from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_lineage(args: argparse.Namespace) -> None:
    from ctpipe.reporting.lineage import read_lineage

    print("\n".join(read_lineage(Path(args.workspace), args.version, args.logs).lines()))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lineage", help="what made a pushed version and where it "
                                                   "serves")
    parser.add_argument("version", help="the pushed version (its folder's name)")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--logs", help="prediction log prefix to count its answers in (default: "
                                       "the one ctpipe monitor last read)")
    parser.set_defaults(handler=_cmd_lineage)
