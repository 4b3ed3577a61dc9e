"""`ctpipe run`: the pipeline, locally with TFX's LocalDagRunner, on a data folder of spans."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import UserError


def _load_run_config(args: argparse.Namespace):
    from pipeline.config import load_config, local_locations

    # The workspace places the pipeline root and the serving folder unless the file says
    # otherwise (e.g. serving_root: s3://...); --data always gives the data folder.
    locations = local_locations(args.workspace, args.data)
    return load_config(args.config, {"data_root": locations.pop("data_root"),
                                     "window": args.window, "train_steps": args.train_steps},
                       defaults=locations)


def print_event(event) -> None:
    """One step's progress line (and what it decided), as the run goes."""
    from pipeline.local_runner import format_event

    print(format_event(event), flush=True)


def _cmd_run(args: argparse.Namespace) -> None:
    from pipeline.local_runner import run_local
    from reporting import status

    config = _load_run_config(args)
    if "://" not in config.data_root and not Path(config.data_root).is_dir():
        raise UserError(f"data folder not found: {config.data_root}")
    print(f"Running {config.pipeline_name} on {config.data_root} "
          f"(window: {config.window or 'all'} spans, {config.train_steps} train steps)")
    run_local(config, args.workspace, report=print_event)
    print(status.format_latest_run(Path(args.workspace)))


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the pipeline locally (LocalDagRunner)")
    run.add_argument("--data", required=True, help="folder holding span-N/ folders")
    run.add_argument("--workspace", required=True,
                     help="pipeline root, metadata.sqlite and serving/ go here")
    run.add_argument("--window", type=int, help="train on the latest N spans (0: all)")
    run.add_argument("--train-steps", type=int)
    run.add_argument("--config", help="YAML or JSON file of settings (see pipeline/config.py)")
    run.set_defaults(handler=_cmd_run)
