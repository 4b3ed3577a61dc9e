"""Every error row of TF Serving's contract: gRPC status code AND message, on a real server."""
from __future__ import annotations

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from ctpipe.common import features
from tests.serving.conftest import MODEL_NAME, in_process_server, predict_request, push_version

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def stubs(tmp_path_factory, saved_model_dir):
    root = tmp_path_factory.mktemp("errors")
    push_version(saved_model_dir, root / "m", 7)
    config = root / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "{MODEL_NAME}" base_path: "{root / 'm'}" model_platform: "tensorflow"
        version_labels {{ key: "stable" value: 7 }} }} }}""")
    with in_process_server(model_config_file=str(config),
                           file_system_poll_wait_seconds=-1) as (_, client):
        yield client


def _example_request(request_type, example: bytes, **spec):
    request = request_type()
    request.model_spec.name = MODEL_NAME
    for key, value in spec.items():
        setattr(request.model_spec, key, value)
    request.input.example_list.examples.add().ParseFromString(example)
    return request


def _cases(example: bytes):
    """(rpc, request, code, message) per contract row."""
    no_spec = predict_pb2.PredictRequest()
    no_spec.inputs[features.EXAMPLES_KEY].CopyFrom(tf.make_tensor_proto([example]))
    extra = predict_request([example])
    extra.inputs["extra"].CopyFrom(tf.make_tensor_proto([1.0]))
    missing = predict_request([example])
    del missing.inputs[features.EXAMPLES_KEY]
    bad_filter = predict_request([example])
    bad_filter.output_filter.append("logits")
    wrong_dtype = predict_request([example])
    wrong_dtype.inputs[features.EXAMPLES_KEY].CopyFrom(tf.make_tensor_proto([1.5]))
    no_fields = get_model_metadata_pb2.GetModelMetadataRequest()
    no_fields.model_spec.name = MODEL_NAME
    status_unknown = get_model_status_pb2.GetModelStatusRequest()
    status_unknown.model_spec.name = "nope"
    status_version = get_model_status_pb2.GetModelStatusRequest()
    status_version.model_spec.name = MODEL_NAME
    status_version.model_spec.version.value = 3
    return {
        "no model_spec": ("Predict", no_spec, INVALID, "Missing ModelSpec"),
        "empty model name": ("Predict", predict_request([example], name=""), INVALID,
                             "ModelSpec has no name specified."),
        "unknown model": ("Predict", predict_request([example], name="nope"), NOT_FOUND,
                          "Servable not found for request: Latest(nope)"),
        "unknown version": ("Predict", predict_request([example], version=9), NOT_FOUND,
                            f"Servable not found for request: Specific({MODEL_NAME}, 9)"),
        "unknown label": ("Predict", predict_request([example], version_label="canary"), INVALID,
                          "Unrecognized servable version label: canary"),
        "unknown signature, Predict": (
            "Predict", predict_request([example], signature_name="X"),
            grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "X" not found.'),
        "unknown signature, Classify": (
            "Classify", _example_request(classification_pb2.ClassificationRequest, example,
                                         signature_name="X"),
            INVALID, "No signature was found with the name: X"),
        "unknown signature, Regress": (
            "Regress", _example_request(regression_pb2.RegressionRequest, example,
                                        signature_name="X"),
            INVALID, "No signature was found with the name: X"),
        "extra input": ("Predict", extra, INVALID,
                        "input size does not match signature: 2!=1 len({examples,extra}) != "
                        "len({examples}). Sent extra: {extra}. Missing but required: {}."),
        "missing input": ("Predict", missing, INVALID,
                          "input size does not match signature: 0!=1 len({}) != "
                          "len({examples}). Sent extra: {}. Missing but required: {examples}."),
        "bad output_filter": ("Predict", bad_filter, INVALID,
                              "output tensor alias not found in signature: logits Outputs "
                              "expected to be in the set {probability}."),
        "wrong dtype": ("Predict", wrong_dtype, INVALID,
                        "Expects arg[0] to be string but float is provided"),
        "metadata without fields": ("GetModelMetadata", no_fields, INVALID,
                                    "GetModelMetadataRequest must specify at least one "
                                    "metadata_field"),
        "status of unknown model": ("GetModelStatus", status_unknown, NOT_FOUND,
                                    "Could not find any versions of model nope"),
        "status of unknown version": ("GetModelStatus", status_version, NOT_FOUND,
                                      f"Could not find version 3 of model {MODEL_NAME}"),
    }


CASES = list(_cases(b"").keys())


@pytest.mark.parametrize("case", CASES)
def test_contract_error(stubs, serialized_examples, case):
    rpc, request, code, message = _cases(serialized_examples[0])[case]
    service = stubs.model if rpc == "GetModelStatus" else stubs.prediction
    with pytest.raises(grpc.RpcError) as caught:
        getattr(service, rpc)(request, timeout=10)
    assert (caught.value.code(), caught.value.details()) == (code, message)


def test_label_resolves_to_its_version(stubs, serialized_examples):
    response = stubs.prediction.Predict(predict_request(serialized_examples[:1],
                                                        version_label="stable"), timeout=10)
    assert response.model_spec.version.value == 7


def test_long_messages_are_truncated(stubs, serialized_examples):
    name = "s" * 2000
    with pytest.raises(grpc.RpcError) as caught:
        stubs.prediction.Predict(predict_request(serialized_examples[:1], signature_name=name),
                                 timeout=10)
    details = caught.value.details()
    assert details.endswith("...TRUNCATED")
    assert details == f'Serving signature key "{name}'[:1024] + "...TRUNCATED"
