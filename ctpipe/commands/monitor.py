"""`ctpipe monitor`: training/serving skew and the model's answers, read from the prediction logs
that `ctpipe serve` (or TF Serving's logging) writes. Reference and formats: docs/monitoring.md.

The window is the last `--last N` logged requests (records of `<prefix>-NNNNN.tfrecord`, newest
files first; a wildcard in the prefix reads several servers' logs). Requests are grouped by the
model version that answered them; each version with at least `--min-examples` examples is
compared with what the pipeline stored beside it (`assets.extra/ctpipe/`): its features' TFDV
statistics with the training statistics, by the curated schema's skew comparators, and its
predictions with its predictions on the eval split.
Exit status 0 when nothing crosses a threshold, 3 when something does (named), 1 on errors.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

from ctpipe.common.errors import UserError
from ctpipe.monitoring.options import DEFAULT_LAST, DEFAULT_MIN_EXAMPLES, WORKSPACE_SUMMARY

EXIT_CROSSED = 3


def _versions_dir(workspace: str | None, model_base_path: str | None, model_name: str) -> str:
    """The folder holding the versions: the workspace's, or the base path TF Serving reads."""
    import tensorflow as tf

    from ctpipe.monitoring.logs import MonitorError

    # The local layout of `ctpipe run` (ctpipe.pipeline.config.local_locations): WS/serving/<model>.
    base = model_base_path or str(Path(workspace) / "serving" / model_name)
    if not tf.io.gfile.isdir(base):
        raise MonitorError(f"model base path {base} does not exist (it should hold the pushed "
                           "versions, <version>/saved_model.pb)")
    return base.rstrip("/")


def _save(summary: Mapping[str, Any], path: Path) -> None:
    from ctpipe.common.files import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(summary, indent=1) + "\n")


def _cmd_monitor(args: argparse.Namespace) -> int:
    if args.last < 1 or args.min_examples < 1:
        raise UserError("--last and --min-examples must be at least 1")
    # TensorFlow and TFDV take seconds to import: the flags are checked before they load.
    from ctpipe.monitoring.summary import format_summary, monitor
    from ctpipe.pipeline.config import DEFAULT_MODEL_NAME, DEFAULT_SCHEMA

    model_name = args.model_name or DEFAULT_MODEL_NAME
    base_path = _versions_dir(args.workspace, args.model_base_path, model_name)
    summary = monitor(args.logs, base_path, model_name, args.schema or DEFAULT_SCHEMA,
                      args.last, args.min_examples)
    save = args.save or (Path(args.workspace) / WORKSPACE_SUMMARY if args.workspace else None)
    if save is not None:
        _save(summary, Path(save))
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return EXIT_CROSSED if summary["crossed"] else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monitor", help="training/serving skew and prediction drift from prediction logs",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--logs", required=True, metavar="PREFIX",
                        help="prediction log prefix, as given to the server (reads "
                             "PREFIX-NNNNN.tfrecord; gs:// and s3:// work too; a wildcard, e.g. "
                             "'/logs/*/big_tipper', reads the logs of several servers)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--workspace", help="local workspace: versions under WS/serving/MODEL/; "
                                           "the summary is saved to WS/monitor/latest.json")
    where.add_argument("--model-base-path", metavar="DIR",
                       help="the folder TF Serving serves (MODEL/ of the serving root; a "
                            "mounted volume or a bucket)")
    parser.add_argument("--model-name", help="the served model (default: the pipeline's "
                                             "default model name)")
    parser.add_argument("--schema", help="curated schema with the skew comparators "
                                         "(default: schemas/schema.pbtxt)")
    parser.add_argument("--last", type=int, default=DEFAULT_LAST, metavar="N",
                        help=f"window: the last N logged requests (default {DEFAULT_LAST})")
    parser.add_argument("--min-examples", type=int, default=DEFAULT_MIN_EXAMPLES, metavar="N",
                        help="compare only versions with at least N logged examples "
                             f"(default {DEFAULT_MIN_EXAMPLES})")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--save", metavar="FILE",
                        help="also write the summary as JSON to FILE (a local path)")
    parser.set_defaults(handler=_cmd_monitor)
