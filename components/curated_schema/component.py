"""The ImportSchemaGen step: TFX's component with the schema's text as one more parameter
(components/curated_schema/executor.py checks and writes it)."""
from __future__ import annotations

from tfx import types
from tfx.components.schema_gen.import_schema_gen.component import (
    ImportSchemaGen as TfxImportSchemaGen,
)
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from ctpipe.components.curated_schema.executor import SCHEMA_TEXT_KEY, Executor


class CuratedSchemaSpec(standard_component_specs.ImportSchemaGenSpec):
    PARAMETERS = {**standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
                  SCHEMA_TEXT_KEY: ExecutionParameter(type=str)}


class ImportSchemaGen(TfxImportSchemaGen):
    """The schema of `schema_text` (read from `schema_file`, which names it)."""

    SPEC_CLASS = CuratedSchemaSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, schema_file: str, schema_text: str):
        base_component.BaseComponent.__init__(self, CuratedSchemaSpec(
            schema_file=schema_file, schema_text=schema_text,
            schema=types.Channel(type=standard_artifacts.Schema)))
