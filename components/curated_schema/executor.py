"""ImportSchemaGen: the curated schema (schemas/schema.pbtxt) as the pipeline's Schema artifact.

TFX's ImportSchemaGen (its name, its Schema artifact), handed the schema's text besides its
path: TFX's cache key covers parameters, so editing the schema (by hand or with `ctpipe schema
accept`) reaches the next run, where TFX's own executor, keyed by the path alone, would hand
over the cached old schema. The text also travels inside a compiled Kubeflow pipeline, so no
image needs the file at the compiling machine's path.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.components.base import base_executor
from tfx.types import standard_component_specs
from tfx.utils import io_utils

SCHEMA_FILE = "schema.pbtxt"  # the file name SchemaGen and ImportSchemaGen write
SCHEMA_TEXT_KEY = "schema_text"


def parse_schema(text: str) -> schema_pb2.Schema:
    """The schema of a text proto; a parse error names the line."""
    return text_format.Parse(text, schema_pb2.Schema())


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        text = exec_properties[SCHEMA_TEXT_KEY]
        try:
            parse_schema(text)
        except text_format.ParseError as err:
            source = exec_properties[standard_component_specs.SCHEMA_FILE_KEY]
            raise ValueError(f"the curated schema {source} is not a valid schema: {err}") \
                from None
        schema = output_dict[standard_component_specs.SCHEMA_KEY][0]
        io_utils.write_string_file(f"{schema.uri}/{SCHEMA_FILE}", text)
