from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2

from ctpipe.validation.schema_anomalies import describe_anomalies


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
