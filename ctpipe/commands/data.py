"""`ctpipe data prepare`: the shipped taxi trips as span folders, of real size if asked."""
from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_data_prepare(args: argparse.Namespace) -> None:
    from ctpipe.dataprep import spans

    prepared = spans.prepare(Path(args.out), Path(args.source) if args.source else None,
                             span_trips=args.span_trips, file_format=args.format)
    for span in prepared:
        print(f"span-{span.number}: {span.quarter}, {span.rows} trips")
    print(f"{len(prepared)} spans in {args.out}")


def register(subparsers: argparse._SubParsersAction) -> None:
    data_parser = subparsers.add_parser("data", help="prepare the taxi trips as spans")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="split trips into quarterly spans")
    prepare.add_argument("--out", required=True, help="folder that receives span-N/")
    prepare.add_argument("--source", help="taxi trips CSV (default: the copy inside tfx)")
    prepare.add_argument("--span-trips", type=int, default=0, metavar="N",
                         help="make every span N trips, each quarter's trips repeated with "
                              "jitter (real quarters: 1-9 M); default: as shipped")
    prepare.add_argument("--format", choices=("csv", "parquet"), default="csv",
                         help="file format of the span files (default: csv)")
    prepare.set_defaults(handler=_cmd_data_prepare)
