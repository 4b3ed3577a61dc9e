"""`ctpipe score`: offline scoring of trips in Beam, gated and published atomically
(scoring/)."""
from __future__ import annotations

import argparse

from ctpipe.common.errors import UserError
from ctpipe.dataclass_flags import add_flags, from_flags


def _cmd_score(args: argparse.Namespace) -> None:
    if not (args.server or args.model_dir or args.workspace):
        raise UserError("give the model: --model-dir DIR, --workspace WS or --server HOST:PORT")
    if args.label and not args.server:
        raise UserError("--label needs --server (labels are a served model's)")
    # Beam and TensorFlow take seconds to import: the flags are checked before they load.
    from ctpipe.scoring import gate, publish
    from ctpipe.scoring.job import ModelSource

    if args.server:
        source = ModelSource(server=args.server, model_name=args.model, label=args.label or "",
                             version=args.version or 0)
    else:
        source = publish.model_source(args.model_dir, args.workspace, args.model, args.version)
    settings = from_flags(gate.GateSettings, args)
    result = publish.score(source, args.input, args.output, output_format=args.format,
                           key_column=args.key_column or "", settings=settings,
                           beam_args=args.beam_arg or ["--direct_running_mode=in_memory",
                                                      "--direct_num_workers=1"],
                           keep=args.keep)
    print(f"scored {result.rows} rows with model version {result.model_version} in "
          f"{result.seconds:.1f} s ({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)")
    figures = result.gate.figures
    print(f"gate passed: NaN rate {figures['nan_rate']:.2%}, mean {figures['mean']:.4f}, "
          f"std {figures['std']:.4f}")
    for note in result.gate.notes:
        print(f"note: {note}")
    print(f"published {result.folder} (named by {args.output}/LATEST)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
    from ctpipe.scoring.gate import GateSettings

    parser = subparsers.add_parser(
        "score", help="score trips offline in Beam; gated, published atomically",
        description="Writes key, probability and model_version per row under OUTPUT/scores-*/"
                    " and names the result in OUTPUT/LATEST once the sanity gate passed.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model-dir", help="a SavedModel folder (e.g. a pushed version)")
    which.add_argument("--workspace", help="pipeline workspace: its latest pushed version, or "
                                           "--version")
    which.add_argument("--server", metavar="HOST:PORT", help="score with a served model (gRPC)")
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME, help="model name")
    parser.add_argument("--version", type=int, help="model version")
    parser.add_argument("--label", help="with --server: the version label to ask for")
    parser.add_argument("--input", required=True, help="CSV file, or a folder of *.csv files")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--key-column", help="input column holding each row's key (default: "
                                             "FILE:ROW)")
    add_flags(parser, GateSettings, "gate")
    parser.add_argument("--keep", type=int, default=3, help="published results kept")
    parser.add_argument("--beam-arg", action="append",
                        help="Beam pipeline argument (repeatable), e.g. --runner=DataflowRunner")
    parser.set_defaults(handler=_cmd_score)
