"""`ctpipe serve`: the local model server, with TF Serving's own command-line flags."""
from __future__ import annotations

import argparse

from ctpipe.common.errors import UserError


def _cmd_serve(args: argparse.Namespace) -> None:
    from ctpipe.serving.server.errors import StartupError
    from ctpipe.serving.server.flags import options_from_args

    options = options_from_args(args)
    # TensorFlow takes seconds to import: flag errors are answered before it loads.
    from ctpipe.serving.server.model_server import serve

    try:
        serve(options)
    except StartupError as err:
        raise UserError(f"Failed to start server. Error: {err}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    from ctpipe.serving.server.flags import add_flags

    parser = subparsers.add_parser(
        "serve", allow_abbrev=False, help="serve models over TF Serving's gRPC/REST API",
        description="A model server keeping TF Serving's contract; flags are "
                    "tensorflow_model_server's (--flag=value or --flag value).")
    add_flags(parser)
    parser.set_defaults(handler=_cmd_serve)
