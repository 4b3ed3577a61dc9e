"""ImportSchemaGen's executor: the curated schema's text becomes the Schema artifact, and a text
that is no schema fails naming its file before anything is written."""
from __future__ import annotations

from pathlib import Path

import pytest
from tfx.types import standard_artifacts, standard_component_specs

from ctpipe.components.curated_schema.executor import (
    SCHEMA_FILE,
    SCHEMA_TEXT_KEY,
    Executor,
    parse_schema,
)

CURATED_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_FILE


def _import(text: str, output: Path) -> None:
    schema = standard_artifacts.Schema()
    schema.uri = str(output)
    Executor().Do({}, {standard_component_specs.SCHEMA_KEY: [schema]}, {
        standard_component_specs.SCHEMA_FILE_KEY: "/curated/schema.pbtxt",
        SCHEMA_TEXT_KEY: text})


def test_the_schema_text_is_the_artifact(tmp_path):
    text = CURATED_SCHEMA.read_text()
    _import(text, tmp_path / "schema")
    written = (tmp_path / "schema" / SCHEMA_FILE).read_text()
    assert written == text
    assert parse_schema(written).feature, "a schema with features"


def test_a_text_that_is_no_schema_fails_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"the curated schema /curated/schema.pbtxt is not a "
                                         r"valid schema: 1:.*feeture"):
        _import('feeture { name: "fare" }', tmp_path / "schema")
    assert not (tmp_path / "schema").exists()
