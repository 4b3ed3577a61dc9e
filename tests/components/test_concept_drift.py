"""ConceptDrift's verdict on a real served model and labelled trips: the AUC it measures on the
newest span against the AUC recorded at the push, flagged exactly when the fall exceeds
`max_auc_drop`; with nothing served, nothing is scored."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from ctpipe.common import features, properties
from ctpipe.common.layout import PUSH_RECORD_FILE
from ctpipe.components.concept_drift.executor import RESULT_FILE, assess
from ctpipe.serving.client.examples import row_to_example
from tests.components.conftest import artifact, one_span_window

MAX_DROP = 0.05


@pytest.fixture()
def inputs(tmp_path, saved_model_dir, taxi_rows):
    """Span 3 of a window (labelled trips in both splits), the served model (version 7) and a
    drift report naming 'fare'."""
    _, rows = taxi_rows
    labelled = [row_to_example({**row, features.LABEL: features.is_big_tipper(
        float(row["tips"] or 0), float(row["fare"] or 0))}, with_label=True)
        for row in rows[:800]]
    examples = one_span_window(tmp_path, 3, {"train": labelled[:600], "eval": labelled[600:]})
    model = artifact(standard_artifacts.Model, tmp_path / "served")
    shutil.copytree(saved_model_dir, path_utils.serving_model_path(model.uri))
    model.set_int_custom_property(properties.FOUND, 1)
    model.set_int_custom_property(properties.SERVED_VERSION, 7)
    report = artifact(standard_artifacts.ExampleAnomalies, tmp_path / "drift")
    report.set_string_custom_property(properties.DRIFTED_FEATURES, "fare")
    report.set_string_custom_property(properties.DRIFT_SCORES, "{}")
    return {"model": model, "examples": examples, "drift_report": report}


def _assess(inputs, tmp_path, name: str, auc_when_pushed: float | None):
    record = Path(path_utils.serving_model_path(inputs["model"].uri)) / PUSH_RECORD_FILE
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({} if auc_when_pushed is None else {"auc": auc_when_pushed}))
    evaluation = artifact(standard_artifacts.ModelEvaluation, tmp_path / name)
    assess(MAX_DROP, evaluation=evaluation, **inputs)
    return evaluation, json.loads((tmp_path / name / RESULT_FILE).read_text())


def test_a_fall_beyond_max_auc_drop_is_concept_drift_and_one_within_is_not(inputs, tmp_path):
    _, result = _assess(inputs, tmp_path, "unrecorded", None)
    auc = result["auc"]
    assert result["examples"] == 800 and 0.5 < auc < 1.0
    assert result["concept_drift"] is False and result["drop"] is None

    evaluation, result = _assess(inputs, tmp_path, "beyond", auc + MAX_DROP + 0.001)
    assert result["concept_drift"] is True
    assert result["auc"] == pytest.approx(auc) and result["examples"] == 800
    assert result["drop"] == pytest.approx(MAX_DROP + 0.001)
    assert (result["span"], result["served_version"], result["drifted_features"]) == (3, 7, "fare")
    assert evaluation.get_int_custom_property("concept_drift") == 1
    assert evaluation.get_float_custom_property("auc") == pytest.approx(auc)

    evaluation, result = _assess(inputs, tmp_path, "within", auc + MAX_DROP - 0.001)
    assert result["concept_drift"] is False
    assert evaluation.get_int_custom_property("concept_drift") == 0


def test_with_nothing_served_nothing_is_scored(inputs, tmp_path):
    inputs["model"].set_int_custom_property(properties.FOUND, 0)
    evaluation = artifact(standard_artifacts.ModelEvaluation, tmp_path / "evaluation")
    assess(MAX_DROP, evaluation=evaluation, **inputs)
    result = json.loads((tmp_path / "evaluation" / RESULT_FILE).read_text())
    assert result == {"span": 3, "drifted_features": "fare", properties.DRIFT_SCORES: "{}"}
    assert evaluation.get_int_custom_property("span") == 3
