"""`ctpipe predict`, `ctpipe model-status`, `ctpipe label`, `ctpipe rollback`: talk to TF
Serving (or `ctpipe serve`) through `ctpipe.serving.client`.

The client is imported inside the handlers (building the parser loads no protos) and never
imports the TensorFlow runtime, so these commands start fast. Its errors are UserErrors:
`ctpipe` reports them as one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ctpipe.commands.track import add_tracking_flags
from ctpipe.common.errors import UserError

if TYPE_CHECKING:
    from ctpipe.serving.client.grpc_client import PredictionClient
    from ctpipe.serving.client.version_labels import LabelChange


def _add_connection_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--server", required=required, metavar="HOST:PORT",
                        help="gRPC address of TF Serving (port 8500 in the official image)")
    parser.add_argument("--timeout", type=float,
                        help="deadline of each request in seconds (default: the client's, 10)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--tls-root-certs", type=Path, help="CA certificate(s) of the server")
    parser.add_argument("--tls-client-cert", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--tls-client-key", type=Path, help="client private key (mutual TLS)")
    parser.add_argument("--tls-server-name", help="name to check in the server certificate")


def _client(args: argparse.Namespace, model: str) -> PredictionClient:
    from ctpipe.serving.client.grpc_client import PredictionClient, TlsConfig

    tls_paths = (args.tls_root_certs, args.tls_client_cert, args.tls_client_key,
                 args.tls_server_name)
    tls = (TlsConfig(args.tls_root_certs, args.tls_client_cert, args.tls_client_key,
                     args.tls_server_name)
           if args.tls or any(v is not None for v in tls_paths) else None)
    timeout = {} if args.timeout is None else {"timeout": args.timeout}
    return PredictionClient(args.server, model, tls=tls, **timeout)


def _cmd_predict(args: argparse.Namespace) -> None:
    from ctpipe.serving.client.examples import read_rows, rows_to_examples

    source = Path(args.csv or args.json)
    examples = rows_to_examples(read_rows(source), source.name)
    with _client(args, args.model) as client:
        prediction = client.predict(examples, version=args.version, label=args.label)
    asked = (f"version {args.version}" if args.version is not None
             else f"label '{args.label}'" if args.label else "latest")
    print(f"{prediction.model_name} version {prediction.model_version} answered "
          f"({asked}, {len(examples)} examples, signature {prediction.signature_name})")
    for index, probability in enumerate(prediction.probabilities, start=1):
        print(f"{index}\t{probability:.4f}")


def _cmd_model_status(args: argparse.Namespace) -> None:
    with _client(args, args.model) as client:
        statuses = client.model_status(args.version)
    for status in statuses:
        error = f" ({status.error_message})" if status.error_message else ""
        print(f"{args.model} version {status.version}: {status.state}{error}")


def _apply_label_change(args: argparse.Namespace,
                        change_labels: Callable[[], LabelChange]) -> None:
    from ctpipe.commands.track import follow_labels
    from ctpipe.serving.client import version_labels
    from ctpipe.serving.client.errors import ClientError

    change = change_labels()
    print(f"{change.describe()} (written to {args.model_config})")
    for line in follow_labels(args):
        print(line)
    if args.server:
        with _client(args, args.model) as client:
            try:
                client.reload_config(version_labels.read_config(args.model_config))
            except ClientError as err:
                raise UserError(f"label written, but the reload failed: {err}") from None
        print(f"{args.server} reloaded the model config")
    else:
        print("a server polling the file (--model_config_file_poll_wait_seconds) follows it")


def _cmd_label(args: argparse.Namespace) -> None:
    from ctpipe.serving.client import version_labels

    _apply_label_change(args, lambda: version_labels.set_label(
        args.model_config, args.model, args.label, args.version))


def _cmd_rollback(args: argparse.Namespace) -> None:
    from ctpipe.serving.client import version_labels

    _apply_label_change(args, lambda: version_labels.rollback(
        args.model_config, args.model, args.label, args.version))


def _model_flag(parser: argparse.ArgumentParser) -> None:
    from ctpipe.pipeline.config import DEFAULT_MODEL_NAME

    default = DEFAULT_MODEL_NAME
    parser.add_argument("--model", default=default, help=f"served model name (default {default})")


def register(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser("predict", help="score trips with a served model over gRPC")
    _add_connection_flags(predict, required=True)
    _model_flag(predict)
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="ask for this model version")
    which.add_argument("--label", help="ask for the version under this label (stable, canary)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV file of trips with a header (taxi columns)")
    source.add_argument("--json", help="JSON list of trip objects, or {\"instances\": [...]}")
    predict.set_defaults(handler=_cmd_predict)

    status = commands.add_parser("model-status", help="versions and states of a served model")
    _add_connection_flags(status, required=True)
    _model_flag(status)
    status.add_argument("--version", type=int)
    status.set_defaults(handler=_cmd_model_status)

    for name, text, handler in (
        ("label", "point a version label (stable, canary) at a model version", _cmd_label),
        ("rollback", "move a label back to an older version (default: the previous one)",
         _cmd_rollback),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("--model-config", type=Path, required=True,
                            help="TF Serving's text ModelServerConfig file (--model_config_file)")
        _model_flag(parser)
        if name == "label":
            parser.add_argument("--label", required=True, help="label name, [a-zA-Z0-9_]+")
            parser.add_argument("--version", type=int, required=True)
        else:
            parser.add_argument("--label", default="stable", help="label to move (default stable)")
            parser.add_argument("--version", type=int,
                                help="target version (default: the one before the current)")
        _add_connection_flags(parser, required=False)
        add_tracking_flags(parser)
        parser.set_defaults(handler=handler)
