"""`ctpipe schema show | accept | bootstrap`: the curated schema (schemas/curation.py); accept
and bootstrap take the newest artifacts of a workspace's ML Metadata store."""
from __future__ import annotations

import argparse
from pathlib import Path


def _latest_artifact_dir(workspace: Path, type_name: str, output_key: str) -> Path:
    """The folder of the newest artifact of `type_name` that a step output under `output_key`."""
    from ctpipe.reporting.status import latest_output
    from ctpipe.schemas.curation import SchemaToolError

    artifact = latest_output(workspace, type_name, output_key)
    if artifact is None:
        raise SchemaToolError(f"no {type_name} in {workspace}: run the pipeline first")
    return Path(artifact.uri)


def _cmd_schema(args: argparse.Namespace) -> None:
    from ctpipe.pipeline.config import DEFAULT_SCHEMA
    from ctpipe.schemas import curation

    target = Path(args.schema or DEFAULT_SCHEMA)
    if args.schema_command == "show":
        print(curation.describe(target))
    elif args.schema_command == "accept":
        # The newest span's statistics (not the reference span's, the other ExampleStatistics).
        from ctpipe.schemas.accept import accept

        print(accept(_latest_artifact_dir(Path(args.workspace), "ExampleStatistics",
                                                   "statistics"), target))
    else:
        print(curation.bootstrap(_latest_artifact_dir(Path(args.workspace), "Schema", "schema"),
                                 target))


def register(subparsers: argparse._SubParsersAction) -> None:
    schema = subparsers.add_parser("schema", help="inspect or change the curated schema")
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
