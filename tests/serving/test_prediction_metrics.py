"""The prediction histogram and missing-value counts per model version (`ServerMetrics`), fed
with TensorFlow's protos (as `ctpipe serve` does) and with the client's (as the gateway does)."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models import features
from serving.client import protos
from serving.client.examples import row_to_example
from serving.server.metrics import ServerMetrics

MODEL = "big_tipper"


def _samples(metrics: ServerMetrics) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for sample in family.samples}


def _examples(taxi_rows) -> list[bytes]:
    _, rows = taxi_rows
    full = {**rows[0], "fare": "7.5", "company": "Taxi Affiliation Services"}
    without_fare = {**full, "fare": ""}
    example = protos.Example.FromString(row_to_example(full))
    example.features.feature["company"].bytes_list.Clear()  # present, but an empty list
    return [row_to_example(full), row_to_example(without_fare), example.SerializeToString()]


@pytest.mark.parametrize("kind", ["client", "tensorflow"])
def test_probabilities_and_missing_values_are_counted_per_version(taxi_rows, kind):
    if kind == "client":
        request, response = protos.PredictRequest(), protos.PredictResponse()
    else:
        from tensorflow_serving.apis import predict_pb2

        request, response = predict_pb2.PredictRequest(), predict_pb2.PredictResponse()
    request.inputs[features.EXAMPLES_KEY].string_val.extend(_examples(taxi_rows))
    response.outputs[features.PREDICTION_KEY].float_val.extend([0.01, 0.52, 0.97])
    metrics = ServerMetrics()
    metrics.observe_predictions(MODEL, 7, request, response)
    metrics.observe_predictions(MODEL, 8, request, response)
    samples = _samples(metrics)
    version = (("model_name", MODEL), ("model_version", "7"))

    def histogram(le: str) -> float:
        return samples[("ctpipe_prediction_bucket", tuple(sorted(version + (("le", le),))))]

    assert samples[("ctpipe_prediction_count", version)] == 3
    assert (histogram("0.05"), histogram("0.5"), histogram("0.55"), histogram("1.0")) == (1, 1, 2, 3)
    assert samples[("ctpipe_examples_total", version)] == 3

    def missing(feature: str) -> float:
        return samples.get(("ctpipe_missing_values_total",
                            tuple(sorted(version + (("feature", feature),)))), 0)

    assert (missing("fare"), missing("company"), missing("trip_miles")) == (1, 1, 0)
    assert samples[("ctpipe_examples_total", (("model_name", MODEL), ("model_version", "8")))] == 3


def test_other_models_outputs_are_skipped():
    request, response = protos.PredictRequest(), protos.PredictResponse()
    request.inputs["x"].float_val.append(1.0)
    response.outputs["scores"].float_val.append(0.5)
    metrics = ServerMetrics()
    metrics.observe_predictions(MODEL, 1, request, response)
    assert not [key for key in _samples(metrics) if key[0].startswith("ctpipe_")
                and not key[0].endswith("_created")]
