"""The gRPC API on a real server and a real SavedModel of ours: results equal in-process ones."""
from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    regression_pb2,
)

from ctpipe.common import features
from tests.serving.conftest import MODEL_NAME, predict_request, push_version


@pytest.fixture
def served(tmp_path, saved_model_dir, start_server):
    push_version(saved_model_dir, tmp_path / "m", 7)
    return start_server(tmp_path / "m", file_system_poll_wait_seconds=-1)[1]


def test_predict_equals_the_in_process_signature(served, serialized_examples, reference_scores):
    response = served.prediction.Predict(predict_request(serialized_examples), timeout=30)
    assert response.model_spec.name == MODEL_NAME
    assert response.model_spec.version.value == 7
    assert response.model_spec.signature_name == "serving_default"
    output = response.outputs[features.PREDICTION_KEY]
    assert output.dtype == tf.float32.as_datatype_enum
    assert not output.tensor_content, "outputs go to typed fields, as TF Serving answers"
    assert [d.size for d in output.tensor_shape.dim] == [len(serialized_examples)]
    np.testing.assert_array_equal(np.array(output.float_val, np.float32), reference_scores)


def test_predict_by_version_and_one_example(served, serialized_examples, reference_scores):
    response = served.prediction.Predict(predict_request(serialized_examples[3:4], version=7),
                                         timeout=10)
    assert response.outputs[features.PREDICTION_KEY].float_val == pytest.approx(
        [reference_scores[3]], rel=1e-6)


def test_metadata_returns_the_signature_def_map(served):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL_NAME
    response = served.prediction.GetModelMetadata(request, timeout=10)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    signature = signature_map.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert signature.inputs[features.EXAMPLES_KEY].dtype == tf.string.as_datatype_enum
    assert list(signature.outputs) == [features.PREDICTION_KEY]
    assert response.model_spec.version.value == 7


def test_status_lists_every_version(served):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    response = served.model.GetModelStatus(request, timeout=10)
    assert [(s.version, s.state, s.status.error_code) for s in response.model_version_status] == [
        (7, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)]


def test_classify_and_regress_need_a_signature_of_their_shape(served, serialized_examples):
    for rpc, request_type, message in (
            ("Classify", classification_pb2.ClassificationRequest,
             "Expected classification signature outputs to contain at least one of classes or "
             "scores"),
            ("Regress", regression_pb2.RegressionRequest,
             "No regression outputs found in signature; expected the output alias outputs")):
        request = request_type()
        request.model_spec.name = MODEL_NAME
        request.input.example_list.examples.add().ParseFromString(serialized_examples[0])
        with pytest.raises(grpc.RpcError) as caught:
            getattr(served.prediction, rpc)(request, timeout=10)
        assert (caught.value.code(), caught.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, message)


def test_method_name_check_flag_requires_classify_and_regress_methods(
        tmp_path, classify_model_dir, start_server, serialized_examples):
    push_version(classify_model_dir, tmp_path / "c", 1)
    stubs = start_server(tmp_path / "c", file_system_poll_wait_seconds=-1,
                         enable_signature_method_name_check=True)[1]
    classify = _input_of(serialized_examples[:2], classification_pb2.ClassificationRequest())
    classify.model_spec.name, classify.model_spec.signature_name = MODEL_NAME, "classification"
    assert len(stubs.prediction.Classify(classify, timeout=10).result.classifications) == 2
    regress = _input_of(serialized_examples[:2], regression_pb2.RegressionRequest())
    regress.model_spec.name, regress.model_spec.signature_name = MODEL_NAME, "regression"
    with pytest.raises(grpc.RpcError) as caught:
        stubs.prediction.Regress(regress, timeout=10)
    assert caught.value.details() == ("Expected regression signature method_name to be "
                                      "tensorflow/serving/regress. Was: tensorflow/serving/predict")


def _input_of(examples, request):
    for serialized in examples:
        request.input.example_list.examples.add().ParseFromString(serialized)
    return request


def test_classify_regress_and_multi_inference_on_classification_signatures(
        tmp_path, classify_model_dir, start_server, serialized_examples, reference_scores):
    push_version(classify_model_dir, tmp_path / "c", 1)
    stubs = start_server(tmp_path / "c", file_system_poll_wait_seconds=-1)[1]
    examples = serialized_examples[:20]

    classify = _input_of(examples, classification_pb2.ClassificationRequest())
    classify.model_spec.name, classify.model_spec.signature_name = MODEL_NAME, "classification"
    result = stubs.prediction.Classify(classify, timeout=10)
    assert result.model_spec.signature_name == "classification"
    assert [[c.label for c in row.classes] for row in result.result.classifications] == [
        ["0", "1"]] * 20
    np.testing.assert_allclose([row.classes[1].score for row in result.result.classifications],
                               reference_scores[:20], rtol=1e-6)

    regress = _input_of(examples, regression_pb2.RegressionRequest())
    regress.model_spec.name, regress.model_spec.signature_name = MODEL_NAME, "regression"
    values = [r.value for r in stubs.prediction.Regress(regress, timeout=10).result.regressions]
    np.testing.assert_allclose(values, reference_scores[:20], rtol=1e-6)

    multi = _input_of(examples, inference_pb2.MultiInferenceRequest())
    for signature, method in (("classification", "tensorflow/serving/classify"),
                              ("regression", "tensorflow/serving/regress")):
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = MODEL_NAME, signature
    results = stubs.prediction.MultiInference(multi, timeout=10).results
    np.testing.assert_allclose([r.value for r in results[1].regression_result.regressions],
                               values, rtol=1e-6)
    assert len(results[0].classification_result.classifications) == 20


def test_inputs_in_tensor_content_and_output_filter(served, serialized_examples, reference_scores):
    request = predict_request(serialized_examples[:2])
    request.output_filter.append(features.PREDICTION_KEY)
    response = served.prediction.Predict(request, timeout=10)
    assert list(response.outputs) == [features.PREDICTION_KEY]
    np.testing.assert_allclose(response.outputs[features.PREDICTION_KEY].float_val,
                               reference_scores[:2], rtol=1e-6)


def test_client_deadline_bounds_the_run(served, serialized_examples):
    huge = predict_request(serialized_examples * 200)  # 120,000 rows: far slower than 1 ms
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction.Predict(huge, timeout=0.001)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # ...and the server is still fine afterwards.
    assert served.prediction.Predict(predict_request(serialized_examples[:1]), timeout=10).outputs


def test_status_and_metadata_answer_while_a_slow_model_runs(tmp_path, slow_model_dir,
                                                            start_server):
    push_version(slow_model_dir, tmp_path / "m", 1)
    stubs = start_server(tmp_path / "m", file_system_poll_wait_seconds=-1)[1]
    running = stubs.prediction.Predict.future(predict_request([b""]), timeout=30)
    time.sleep(0.3)  # the request has reached the model, which takes about 2 s
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = MODEL_NAME
    metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata.model_spec.name = MODEL_NAME
    asked = time.monotonic()
    assert stubs.model.GetModelStatus(status, timeout=10).model_version_status[0].version == 1
    assert stubs.prediction.GetModelMetadata(metadata, timeout=10).model_spec.version.value == 1
    answered_after = time.monotonic() - asked
    assert not running.done(), "both answers came while the model was still running"
    assert answered_after < 0.5
    assert list(running.result().outputs[features.PREDICTION_KEY].float_val) == [0.0]
