"""`ctpipe run`: the pipeline, locally with TFX's LocalDagRunner, on a data folder of spans."""
from __future__ import annotations

import argparse
from pathlib import Path

from ctpipe.common.errors import UserError


def _load_run_config(args: argparse.Namespace):
    from ctpipe.pipeline.config import load_config, local_locations

    # The workspace places the pipeline root and the serving folder unless the file says
    # otherwise (e.g. serving_root: s3://...); --data always gives the data folder.
    locations = local_locations(args.workspace, args.data)
    return load_config(args.config, {"data_root": locations.pop("data_root"),
                                     "window": args.window, "train_steps": args.train_steps,
                                     "span": args.span},
                       defaults=locations)


def print_event(event) -> None:
    """One step's progress line (and what it decided), as the run goes."""
    from ctpipe.pipeline.local_runner import format_event

    print(format_event(event), flush=True)


def _cmd_run(args: argparse.Namespace) -> None:
    config = _load_run_config(args)
    if "://" not in config.data_root and not Path(config.data_root).is_dir():
        raise UserError(f"data folder not found: {config.data_root}")
    # TFX takes seconds to import: bad settings are answered before it loads.
    from ctpipe.pipeline.local_runner import choose_span, run_local
    from ctpipe.reporting import status

    choice = choose_span(config, args.workspace)
    which = "requested" if config.span else f"the newest in {config.data_root}"
    if choice.already_trained_by and not args.rerun:
        print(f"Nothing new: span {choice.span} ({which}) has not changed since run "
              f"{choice.already_trained_by} trained on it; not running. Use --rerun to run "
              "it again.")
        return
    config = config.replace(span=choice.span)
    print(f"Running {config.pipeline_name} on span {choice.span} ({which}) "
          f"(window: {config.window or 'all'} spans, at least {config.train_steps} train "
          f"steps, {config.trainer.epochs:g} pass(es) over the window)")
    run_local(config, args.workspace, report=print_event)
    print(status.format_latest_run(Path(args.workspace)))
    if config.gc_keep_runs:
        from ctpipe.retention.gc import run_gc

        found = run_gc(Path(args.workspace), config.pipeline_root, config.span_index_uri,
                       config.serving_model_dir, config.serving_model_config,
                       config.model_name, config.gc_keep_runs, dry_run=False)
        print(found.lines(dry_run=False)[0])


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the pipeline locally (LocalDagRunner)")
    run.add_argument("--data", required=True, help="folder holding span-N/ folders")
    run.add_argument("--workspace", required=True,
                     help="pipeline root, metadata.sqlite and serving/ go here")
    run.add_argument("--window", type=int, help="train on the latest N spans (0: all)")
    run.add_argument("--train-steps", type=int,
                     help="at least this many training steps (the budget is also "
                          "trainer.epochs passes over the window)")
    run.add_argument("--span", type=int,
                     help="the span to ingest (default: the newest in --data); a span whose "
                          "files are missing fails the run")
    run.add_argument("--rerun", action="store_true",
                     help="run even when a completed run already trained on this span's files")
    run.add_argument("--config", action="append",
                     help="YAML or JSON file of settings (see pipeline/config.py); repeat it "
                          "to add files, a later one's settings winning")
    run.set_defaults(handler=_cmd_run)
