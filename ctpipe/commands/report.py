"""`ctpipe report --workspace WS --out report.html`: the workspace's runs as one self-contained
HTML page (reporting/page/)."""
from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_report(args: argparse.Namespace) -> None:
    from ctpipe.reporting.page import write_report

    out = Path(args.out)
    runs, plots = write_report(Path(args.workspace), out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB: {runs} runs, {plots} plots); "
          f"open it in a browser, e.g. file://{out.resolve()}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write one self-contained HTML page about a workspace",
        description="Runs, spans, data drift, anomalies, evaluations, pushed versions, concept "
                    "drift and the latest monitor summary of a workspace, as one HTML file "
                    "that needs no network to view.")
    parser.add_argument("--workspace", required=True, help="the workspace of `ctpipe run`")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.set_defaults(handler=_cmd_report)
