"""CuratedSchema: the curated schema (schemas/schema.pbtxt) as the pipeline's Schema artifact.

The schema's text is the step's parameter, not its path: TFX's cache key covers parameters, so
editing the schema (by hand or with `ctpipe schema accept`) reaches the next run, where
ImportSchemaGen, keyed by the path alone, would hand over the cached old schema. The text also
travels inside a compiled Kubeflow pipeline, so no image needs the file. (No `from __future__
import annotations`: TFX's @component reads the annotations as types.)
"""

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils

SCHEMA_FILE = "schema.pbtxt"  # the file name SchemaGen and ImportSchemaGen write


def parse_schema(text: str) -> schema_pb2.Schema:
    """The schema of a text proto; a parse error names the line."""
    return text_format.Parse(text, schema_pb2.Schema())


@component
def CuratedSchema(schema: OutputArtifact[standard_artifacts.Schema],
                  schema_text: Parameter[str]) -> None:
    parse_schema(schema_text)
    io_utils.write_string_file(f"{schema.uri}/{SCHEMA_FILE}", schema_text)
