"""Live prediction metrics (`ServerMetrics.observe_predictions`): the probability histogram, null
outputs and missing feature values per model version, on real trips, through TF's protos, the
TensorFlow-free client protos (the gateway's) and a real server's Prometheus endpoint."""
from __future__ import annotations

import math

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from ctpipe.common import features
from ctpipe.serving.client import protos
from ctpipe.serving.client.examples import row_to_example
from ctpipe.serving.server.metrics import (
    EXAMPLES_CHECKED,
    FEATURE_MISSING,
    MAX_CHECKED_EXAMPLES,
    PREDICTION_NULL,
    PREDICTION_PROBABILITY,
    PROBABILITY_BUCKETS,
    ServerMetrics,
)
from tests.serving.conftest import MODEL_NAME, in_process_server, predict_request, push_version


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of the exposition, as Prometheus would parse it."""
    text = metrics.exposition().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _version(version: int, **more: str) -> tuple:
    return tuple(sorted({"model_name": MODEL_NAME, "model_version": str(version), **more}.items()))


def _tf_response(probabilities: list[float], tensor_content: bool = False):
    """A PredictResponse with `probability` [n, 1] in the typed field (as this server writes
    it) or in tensor_content (as TF Serving may)."""
    values = np.array(probabilities, dtype=np.float32)
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=(
        tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(
            size=len(values)), tensor_shape_pb2.TensorShapeProto.Dim(size=1)])))
    if tensor_content:
        tensor.tensor_content = values.astype("<f4").tobytes()
    else:
        tensor.float_val.extend(values.tolist())
    response = predict_pb2.PredictResponse()
    response.outputs[features.PREDICTION_KEY].CopyFrom(tensor)
    return response


@pytest.fixture(scope="module")
def rows(taxi_rows) -> list[dict[str, str]]:
    """Real trips, the first of them with company left empty."""
    return [{**row, "company": ""} if index == 0 else row
            for index, row in enumerate(taxi_rows[1][:40])]


def _missing_in_rows(rows: list[dict[str, str]]) -> dict[str, int]:
    """What the client leaves out: every empty cell of a feature."""
    return {name: sum(row[name] == "" for row in rows) for name in features.FEATURE_NAMES}


def test_probabilities_nulls_and_missing_values_per_version(rows):
    metrics = ServerMetrics()
    examples = [row_to_example(row) for row in rows[:4]]
    # An empty value list counts as missing too (CsvExampleGen's form of an empty cell).
    examples[1] = row_to_example({name: rows[1].get(name, "") for name in features.RAW_COLUMNS}
                                 | {"fare": ""}, empty_lists=True)
    metrics.observe_predictions(MODEL_NAME, 7, predict_request(examples),
                                _tf_response([0.02, 0.5, 0.97, math.nan]))
    metrics.observe_predictions(MODEL_NAME, 8, predict_request(examples[:1]),
                                _tf_response([0.51], tensor_content=True))

    samples = _samples(metrics)
    bucket = f"{PREDICTION_PROBABILITY}_bucket"
    assert samples[(bucket, _version(7, le="0.05"))] == 1
    assert samples[(bucket, _version(7, le="0.45"))] == 1
    assert samples[(bucket, _version(7, le="0.5"))] == 2   # le is inclusive
    assert samples[(bucket, _version(7, le="0.95"))] == 2
    assert samples[(bucket, _version(7, le="1.0"))] == 3
    assert samples[(bucket, _version(7, le="+Inf"))] == 3
    assert samples[(f"{PREDICTION_PROBABILITY}_count", _version(7))] == 3
    assert samples[(f"{PREDICTION_PROBABILITY}_sum", _version(7))] == pytest.approx(1.49)
    assert samples[(f"{PREDICTION_NULL}_total", _version(7))] == 1
    assert samples[(f"{PREDICTION_PROBABILITY}_bucket", _version(8, le="0.5"))] == 0
    assert samples[(f"{PREDICTION_PROBABILITY}_bucket", _version(8, le="0.55"))] == 1
    assert len(PROBABILITY_BUCKETS) == 20

    assert samples[(f"{EXAMPLES_CHECKED}_total", _version(7))] == 4
    expected = _missing_in_rows(rows[:4])
    expected["fare"] += 1
    for name in features.FEATURE_NAMES:
        assert samples[(f"{FEATURE_MISSING}_total", _version(7, feature=name))] == expected[name]
    assert expected["company"] >= 1 and expected["pickup_latitude"] >= 1  # real gaps counted
    assert samples[(f"{FEATURE_MISSING}_total", _version(8, feature="company"))] == 1


def test_the_tensorflow_free_protos_of_the_gateway_give_the_same_counts(rows):
    examples = [row_to_example(row) for row in rows[:3]]
    with_tf, without_tf = ServerMetrics(), ServerMetrics()
    with_tf.observe_predictions(MODEL_NAME, 3, predict_request(examples),
                                _tf_response([0.1, 0.2, 0.3]))
    request = protos.PredictRequest.FromString(predict_request(examples).SerializeToString())
    response = protos.PredictResponse.FromString(
        _tf_response([0.1, 0.2, 0.3]).SerializeToString())
    without_tf.observe_predictions(MODEL_NAME, 3, request, response)

    assert _samples(with_tf) == _samples(without_tf)


def test_a_response_without_probabilities_counts_every_example_as_null(rows):
    metrics = ServerMetrics()
    examples = [row_to_example(row) for row in rows[:3]]
    metrics.observe_predictions(MODEL_NAME, 3, predict_request(examples),
                                predict_pb2.PredictResponse())
    metrics.observe_predictions(MODEL_NAME, 3, predict_request(examples), _tf_response([0.4]))

    samples = _samples(metrics)
    assert samples[(f"{PREDICTION_NULL}_total", _version(3))] == 3 + 2
    assert samples[(f"{PREDICTION_PROBABILITY}_count", _version(3))] == 1


def test_large_requests_are_checked_on_a_sample(rows):
    metrics = ServerMetrics()
    examples = [row_to_example(row) for row in rows]
    metrics.observe_predictions(MODEL_NAME, 1, predict_request(examples),
                                _tf_response([0.5] * len(examples)))

    samples = _samples(metrics)
    assert len(examples) > MAX_CHECKED_EXAMPLES
    assert samples[(f"{EXAMPLES_CHECKED}_total", _version(1))] == MAX_CHECKED_EXAMPLES
    assert samples[(f"{PREDICTION_PROBABILITY}_count", _version(1))] == len(examples)
    for name in features.FEATURE_NAMES:
        assert samples[(f"{FEATURE_MISSING}_total", _version(1, feature=name))] <= min(
            MAX_CHECKED_EXAMPLES, _missing_in_rows(rows)[name])


def test_a_real_server_exports_them_beside_tf_servings_metrics(tmp_path, saved_model_dir, rows):
    push_version(saved_model_dir, tmp_path / "m", 5)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }')
    examples = [row_to_example(row) for row in rows[:15]]
    with in_process_server(tmp_path / "m", rest_api_port=-1, file_system_poll_wait_seconds=-1,
                           monitoring_config_file=str(monitoring)) as (handle, stubs):
        for example in examples[:10]:  # batch-1 requests, then one batch of 5
            stubs.prediction.Predict(predict_request([example]), timeout=30)
        served = stubs.prediction.Predict(predict_request(examples[10:]), timeout=30)
        text = requests.get(f"http://127.0.0.1:{handle.rest_port}/monitoring/prometheus/metrics",
                            timeout=10).text

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families[PREDICTION_PROBABILITY].type == "histogram"
    assert families[FEATURE_MISSING].type == "counter"
    assert ":tensorflow:serving:request_count" in families  # TF Serving's stay as they were
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    assert samples[(f"{PREDICTION_PROBABILITY}_count", _version(5))] == 15
    assert samples[(f"{PREDICTION_NULL}_total", _version(5))] == 0
    above_half = sum(p > 0.5 for p in served.outputs[features.PREDICTION_KEY].float_val)
    assert (samples[(f"{PREDICTION_PROBABILITY}_bucket", _version(5, le="+Inf"))]
            - samples[(f"{PREDICTION_PROBABILITY}_bucket", _version(5, le="0.5"))]) >= above_half
    assert samples[(f"{EXAMPLES_CHECKED}_total", _version(5))] == 15
    for name, count in _missing_in_rows(rows[:15]).items():
        assert samples[(f"{FEATURE_MISSING}_total", _version(5, feature=name))] == count
