"""`ctpipe`: the command line of the continuous-training project.

Every command (or family of commands) is a module `ctpipe/commands/<name>.py` whose
`register(subparsers)` adds its parser and handler; the libraries it calls live in their own
packages. Heavy libraries (TensorFlow, TFX) are imported inside the handlers that need them, so
that `ctpipe --help`, `ctpipe status` and data preparation start fast.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Sequence

from ctpipe.common.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctpipe", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show TFX's own logs")
    commands = parser.add_subparsers(dest="command", required=True)

    from ctpipe.commands import (
        client,
        data,
        demo,
        gateway,
        gc,
        kubeflow,
        lineage,
        monitor,
        report,
        rollout,
        run,
        schema,
        score,
        serve,
        status,
        track,
    )

    for command in (data, run, status, lineage, gc, schema, demo, serve, monitor, report, client,
                    kubeflow, gateway, rollout, score, track):
        command.register(commands)
    return parser


def _quiet_libraries() -> None:
    """Hides TensorFlow's C++ start-up chatter and library deprecation warnings (use -v)."""
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


class _HideRetryWarnings(logging.Filter):
    """urllib3 (under the KFP client) warns at each retry of a request nothing answered; the
    final failure is reported as one line, the retries only with -v."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("urllib3.")
                    and record.getMessage().startswith("Retrying"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not args.verbose:
        handler.addFilter(_HideSpuriousTfxWarnings())
        handler.addFilter(_HideRetryWarnings())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        # A handler returns an exit status of its own (monitor: 3 when a threshold is
        # crossed; rollout analyze: when it recommends a rollback), or nothing for success.
        return args.handler(args) or 0
    except UserError as err:
        print(f"ctpipe: {err}", file=sys.stderr)
        return 1


def console_main() -> None:
    """The `ctpipe` command: main()'s result becomes the process's exit status. A reader that
    closed the pipe early (`ctpipe schema show | head`) ends the command quietly, as it does
    any Unix tool (status 141: killed by SIGPIPE)."""
    from ctpipe.common.storage import exit_process

    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the failed flush at exit: stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 128 + signal.SIGPIPE
    exit_process(status)


if __name__ == "__main__":
    console_main()
