"""The ValidationGate's decisions on real artifacts: anomalies stop the run naming the span and
the feature, and leave no validated schema; clean data of a first span passes with an empty
drift report, a profile of the window's sample and the schema passed on."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.types import artifact_utils, standard_artifacts

from ctpipe.common import progress, properties
from ctpipe.components.curated_schema.executor import SCHEMA_FILE
from ctpipe.components.validation_gate.executor import DataValidationError, validate
from ctpipe.validation.schema_anomalies import describe_anomalies
from tests.components.conftest import artifact, one_span_window

CURATED_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_FILE


def test_each_anomalous_feature_is_named_with_its_reason():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["fare"]
    info.short_description = "Unexpected data type"
    info.description = "Expected data of type: FLOAT but got BYTES"
    clean = anomalies_pb2.Anomalies()

    lines = describe_anomalies({"train": anomalies, "eval": clean, "test": anomalies})

    assert lines == ["feature 'fare' (test, train): Unexpected data type: "
                     "Expected data of type: FLOAT but got BYTES"]
    assert describe_anomalies({"train": clean}) == []


@pytest.fixture()
def gate(tmp_path, serialized_examples):
    """The gate's inputs for span 1, the first span of its window, and its empty outputs."""
    examples = one_span_window(tmp_path, 1, {"train": serialized_examples})
    anomalies = artifact(standard_artifacts.ExampleAnomalies, tmp_path / "anomalies")
    anomalies.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split in ("train", "eval"):
        (tmp_path / "anomalies" / f"Split-{split}").mkdir(parents=True)
        (tmp_path / "anomalies" / f"Split-{split}" / properties.ANOMALIES_FILE).write_bytes(
            anomalies_pb2.Anomalies().SerializeToString())
    schema = artifact(standard_artifacts.Schema, tmp_path / "schema")
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / SCHEMA_FILE).write_text(CURATED_SCHEMA.read_text())
    return {"examples": examples, "anomalies": anomalies, "schema": schema,
            "validated_schema": artifact(standard_artifacts.Schema, tmp_path / "validated"),
            "drift_report": artifact(standard_artifacts.ExampleAnomalies, tmp_path / "drift"),
            "window_statistics": artifact(standard_artifacts.ExampleStatistics,
                                          tmp_path / "statistics"),
            "drift_policy": "warn", "sample_statistics_examples": 300}


def test_anomalies_stop_the_run_naming_the_span_and_feature(gate, tmp_path):
    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["fare"].short_description = "Unexpected data type"
    (tmp_path / "anomalies" / "Split-eval" / properties.ANOMALIES_FILE).write_bytes(
        anomalies.SerializeToString())

    with pytest.raises(DataValidationError, match=r"span 1 \(window 1-1\).*feature 'fare' "
                                                  r"\(eval\): Unexpected data type"):
        validate(**gate)
    assert not (tmp_path / "validated").exists(), "the Trainer's schema input is never made"


def test_an_unknown_drift_policy_is_refused_by_name(gate):
    with pytest.raises(ValueError, match="drift_policy must be one of .* got 'ignore'"):
        validate(**{**gate, "drift_policy": "ignore"})


def test_a_clean_first_span_passes_with_its_profile_and_the_schema(gate, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=progress.LOGGER_NAME)
    validate(**gate)

    report = gate["drift_report"]
    assert report.get_string_custom_property(properties.DRIFTED_FEATURES) == ""
    assert json.loads(report.get_string_custom_property(properties.DRIFT_SCORES)) == {}
    assert json.loads((tmp_path / "drift" / properties.DRIFT_FILE).read_text()) == []
    assert "drift: span 1 is the first span, nothing to compare it with" in caplog.messages
    statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (tmp_path / "statistics" / f"Split-{properties.SAMPLE_SPLIT}"
         / properties.STATISTICS_FILE).read_bytes())
    assert statistics.datasets[0].num_examples == 300
    assert gate["window_statistics"].get_string_custom_property(
        properties.WINDOW_SPANS) == "1-1"
    assert (tmp_path / "validated" / SCHEMA_FILE).read_text() == CURATED_SCHEMA.read_text()
