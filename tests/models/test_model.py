from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ctpipe import models
from ctpipe.common import features
from ctpipe.models.export import export_serving_model
from ctpipe.models.inputs import parse_examples
from ctpipe.models.model import build_model, fit_feature_stats
from ctpipe.models.options import HParams
from ctpipe.serving.client.examples import row_to_example

_PY_TYPES = {"int64": lambda v: int(float(v)), "float32": float, "string": str}


@pytest.fixture(scope="module")
def columns(taxi_rows):
    _, rows = taxi_rows
    parsed = parse_examples(tf.constant([row_to_example(r) for r in rows[:1500]]), with_label=False)
    return {name: tensor.numpy() for name, tensor in parsed.items()}


def test_no_leaky_or_label_column_is_a_model_input(columns):
    model = build_model(fit_feature_stats(columns, HParams()), HParams())
    assert set(model.input.keys()) == set(features.FEATURE_NAMES)
    assert features.TIPS not in model.input and features.LABEL not in model.input


def test_feature_stats_follow_the_data(columns):
    stats = fit_feature_stats(columns, HParams(max_vocabulary=3, num_buckets=4))
    assert len(stats.vocabularies["payment_type"]) == 3
    assert "Cash" in stats.vocabularies["payment_type"]
    assert len(stats.bucket_boundaries["pickup_latitude"]) <= 3
    mean, variance = stats.mean_variance["fare"]
    assert mean == pytest.approx(np.log1p(np.maximum(columns["fare"], 0)).mean(), rel=1e-5)
    assert variance > 0


def test_missing_values_get_defaults_when_parsing():
    empty = tf.train.Example()
    empty.features.feature["fare"].float_list.value[:] = []  # as CsvExampleGen writes ""
    parsed = parse_examples(tf.constant([empty.SerializeToString()]), with_label=False)
    assert parsed["fare"].numpy().tolist() == [0.0]
    assert parsed["company"].numpy().tolist() == [b""]
    assert parsed["trip_start_hour"].numpy().tolist() == [0]


def test_exported_signature_scores_serialized_examples_like_the_model(tmp_path, taxi_rows, columns):
    _, rows = taxi_rows
    model = build_model(fit_feature_stats(columns, HParams()), HParams())
    export_serving_model(model, str(tmp_path / "export"))

    serialized = [row_to_example(r) for r in rows[:20]]
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](
        **{features.EXAMPLES_KEY: tf.constant(serialized)})[features.PREDICTION_KEY].numpy()
    # predict() runs the graph that fit() trains; the served signature must agree with it.
    direct = model.predict(parse_examples(tf.constant(serialized), with_label=False),
                           verbose=0).ravel()

    assert served.shape == (20,)
    np.testing.assert_allclose(served, direct, rtol=1e-5)
    assert np.all((served >= 0) & (served <= 1))


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ValueError, match="hiden_units"):
        HParams.model_validate({"hiden_units": [8]})
    assert HParams.model_validate({"hidden_units": [8, 4]}).hidden_units == (8, 4)


def test_code_version_changes_with_the_model_code_and_the_contract_it_imports(tmp_path):
    assert models.code_version() == models.code_version(), "stable for unchanged code"
    assert Path(features.__file__) in models.model_sources()
    package, floor = tmp_path / "models", tmp_path / "common"
    package.mkdir()
    floor.mkdir()
    (package / "model.py").write_text("from ctpipe.common import features\nA = 1\n")
    (floor / "features.py").write_text("LABEL = 'big_tipper'\n")
    (floor / "storage.py").write_text("X = 1\n")  # the model does not import it

    def version() -> str:
        return models.code_version(models.model_sources(package, floor))

    first = version()
    (package / "model.py").write_text("from ctpipe.common import features\nA = 2\n")
    second = version()
    (floor / "features.py").write_text("LABEL = 'tipped'\n")
    third = version()
    (floor / "storage.py").write_text("X = 2\n")
    assert len({first, second, third}) == 3
    assert version() == third
