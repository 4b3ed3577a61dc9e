"""`ctpipe`: the command line of the continuous-training project.

Heavy libraries (TensorFlow, TFX) are imported inside the commands that need them, so that
`ctpipe --help`, `ctpipe status` and data preparation start fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ctpipe.errors import UserError


def _cmd_data_prepare(args: argparse.Namespace) -> None:
    from dataprep import spans as data

    spans = data.prepare(Path(args.out), Path(args.source) if args.source else None,
                         span_trips=args.span_trips, file_format=args.format)
    for span in spans:
        print(f"span-{span.number}: {span.quarter}, {span.rows} trips")
    print(f"{len(spans)} spans in {args.out}")


def _load_run_config(args: argparse.Namespace):
    from pipeline.config import load_config, local_locations

    # The workspace places the pipeline root and the serving folder unless the file says
    # otherwise (e.g. serving_root: s3://...); --data always gives the data folder.
    locations = local_locations(args.workspace, args.data)
    return load_config(args.config, {"data_root": locations.pop("data_root"),
                                     "window": args.window, "train_steps": args.train_steps,
                                     "span": args.span},
                       defaults=locations)


def _print_event(event) -> None:
    from pipeline.local_runner import format_event

    print(format_event(event), flush=True)


def _cmd_run(args: argparse.Namespace) -> None:
    from pipeline.local_runner import choose_span, run_local

    config = _load_run_config(args)
    if "://" not in config.data_root and not Path(config.data_root).is_dir():
        raise UserError(f"data folder not found: {config.data_root}")
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
    run_local(config, args.workspace, report=_print_event)
    from ctpipe import status

    print(status.format_latest_run(Path(args.workspace)))


def _cmd_status(args: argparse.Namespace) -> None:
    from ctpipe import status

    print(status.format_status(Path(args.workspace), limit=args.limit))


def _cmd_schema(args: argparse.Namespace) -> None:
    from ctpipe import schema_tools
    from pipeline.config import DEFAULT_SCHEMA

    target = Path(args.schema or DEFAULT_SCHEMA)
    if args.schema_command == "show":
        print(schema_tools.describe(target))
    elif args.schema_command == "accept":
        print(schema_tools.accept_latest(Path(args.workspace), target))
    else:
        print(schema_tools.bootstrap(Path(args.workspace), target))


def _cmd_demo(args: argparse.Namespace) -> None:
    from ctpipe import demo

    demo.run_demo(Path(args.workspace), initial_spans=args.initial_spans,
                  train_steps=args.train_steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctpipe", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show TFX's own logs")
    commands = parser.add_subparsers(dest="command", required=True)

    data_parser = commands.add_parser("data", help="prepare the taxi trips as spans")
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

    run = commands.add_parser("run", help="run the pipeline locally (LocalDagRunner)")
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
    run.add_argument("--config", help="YAML or JSON file of settings (see pipeline/config.py)")
    run.set_defaults(handler=_cmd_run)

    status_parser = commands.add_parser("status", help="recent runs, pushes, blessed model")
    status_parser.add_argument("--workspace", required=True)
    status_parser.add_argument("--limit", type=int, default=10, help="runs to show")
    status_parser.set_defaults(handler=_cmd_status)

    schema = commands.add_parser("schema", help="inspect or change the curated schema")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    show = schema_commands.add_parser("show", help="print the curated schema's features")
    show.add_argument("--schema", help="schema file (default: schemas/schema.pbtxt)")
    for name, text in (
        ("accept", "accept the anomalies of the latest validated span into the schema"),
        ("bootstrap", "write the schema SchemaGen inferred in a workspace as the curated one"),
    ):
        sub = schema_commands.add_parser(name, help=text)
        sub.add_argument("--workspace", required=True)
        sub.add_argument("--schema", help="schema file (default: schemas/schema.pbtxt)")
    schema.set_defaults(handler=_cmd_schema)

    demo = commands.add_parser("demo", help="continuous training on arriving spans")
    demo.add_argument("--workspace", required=True)
    demo.add_argument("--initial-spans", type=int, default=15)
    demo.add_argument("--train-steps", type=int, default=None)
    demo.set_defaults(handler=_cmd_demo)

    from ctpipe import (gateway_command, kubeflow_commands, monitor, report, rollout_command,
                        score_command, serve_command, serving_commands)

    serve_command.register(commands)  # serve
    monitor.register(commands)  # monitor
    report.register(commands)  # report
    serving_commands.register(commands)  # predict, model-status, label, rollback
    kubeflow_commands.register(commands)  # compile, submit, schedule, runs, build
    gateway_command.register(commands)  # gateway
    rollout_command.register(commands)  # rollout analyze
    score_command.register(commands)  # score
    return parser


def _quiet_libraries() -> None:
    """Hides TensorFlow's C++ start-up chatter and library deprecation warnings (use -v)."""
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for category in (FutureWarning, DeprecationWarning, RuntimeWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _HideSpuriousTfxWarnings(logging.Filter):
    """TFX 1.16 warns "...property_predicate is not supported." on every input resolution: it tests
    an always-truthy proto message (channel_resolver.py), not a predicate that is really set."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith("property_predicate is not supported.")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not args.verbose:
        handler.addFilter(_HideSpuriousTfxWarnings())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        # A handler returns an exit status of its own (monitor: 3 when a threshold is
        # crossed; rollout analyze: when it recommends a rollback), or nothing for success.
        return args.handler(args) or 0
    except UserError as err:
        print(f"ctpipe: {err}", file=sys.stderr)
        return 1


def console_main() -> None:
    """The `ctpipe` command: main()'s result becomes the process's exit status."""
    from pipeline.storage import exit_process

    exit_process(main())


if __name__ == "__main__":
    console_main()
