"""`ctpipe serve`: the local model server, with TF Serving's own command-line flags."""
from __future__ import annotations

import argparse

from ctpipe.errors import UserError


def _cmd_serve(args: argparse.Namespace) -> None:
    from serving.options import FlagError, options_from_args

    try:
        options = options_from_args(args)
    except FlagError as err:
        raise UserError(str(err)) from None
    from serving import server
    from serving.models import StartupError

    try:
        server.serve(options)
    except StartupError as err:
        raise UserError(f"Failed to start server. Error: {err}") from None


def register(subparsers) -> None:
    from serving.options import add_flags

    parser = subparsers.add_parser(
        "serve", allow_abbrev=False, help="serve models over TF Serving's gRPC/REST API",
        description="A model server keeping TF Serving's contract; flags are "
                    "tensorflow_model_server's (--flag=value or --flag value).")
    add_flags(parser)
    parser.set_defaults(handler=_cmd_serve)
