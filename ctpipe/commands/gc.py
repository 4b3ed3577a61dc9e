"""`ctpipe gc`: delete the artifacts no run, served or labelled version, stored span or running
step needs (retention/gc.py), or with --dry-run list them and the space they take."""
from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_gc(args: argparse.Namespace) -> None:
    from ctpipe.pipeline.config import load_config, local_locations
    from ctpipe.retention.gc import run_gc

    workspace = Path(args.workspace)
    # gc reads no data: the workspace stands in for the data folder the settings require.
    config = load_config(args.config, defaults=local_locations(workspace, workspace))
    found = run_gc(workspace, config.pipeline_root, config.span_index_uri,
                   config.serving_model_dir, config.serving_model_config, config.model_name,
                   args.keep_runs if args.keep_runs is not None else config.gc_keep_runs or 1,
                   args.dry_run)
    print("\n".join(found.lines(args.dry_run)))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gc", help="delete artifacts nothing needs any more")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--config", help="the run's configuration file (where serving is)")
    parser.add_argument("--keep-runs", type=int, help="keep the newest N runs' artifacts "
                                                      "(default: gc_keep_runs, else 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would go and the space it frees; delete nothing")
    parser.set_defaults(handler=_cmd_gc)
