"""Server-side batching and its errors, the sampled prediction log, TLS, malformed requests."""
from __future__ import annotations

import datetime
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from ctpipe.common import features
from tests.serving.conftest import MODEL_NAME, in_process_server, predict_request, push_version


def _batching_file(tmp_path, text: str):
    path = tmp_path / "batching.config"
    path.write_text(text)
    return str(path)


def test_batched_results_equal_unbatched_ones(tmp_path, saved_model_dir, start_server,
                                             serialized_examples, reference_scores):
    push_version(saved_model_dir, tmp_path / "m", 1)
    _, stubs = start_server(tmp_path / "m", enable_batching=True, batching_parameters_file=
                            _batching_file(tmp_path, "max_batch_size { value: 64 } "
                                           "batch_timeout_micros { value: 5000 } "
                                           "allowed_batch_sizes: 16 allowed_batch_sizes: 64"))
    results, errors = {}, []

    def client(start: int):
        try:
            response = stubs.prediction.Predict(
                predict_request(serialized_examples[start:start + 5]), timeout=30)
            results[start] = list(response.outputs[features.PREDICTION_KEY].float_val)
        except grpc.RpcError as err:
            errors.append(err)

    threads = [threading.Thread(target=client, args=(i * 5,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for start, values in results.items():
        np.testing.assert_allclose(values, reference_scores[start:start + 5], rtol=1e-5)


def test_batching_errors(tmp_path, saved_model_dir, start_server, serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 1)
    _, stubs = start_server(tmp_path / "m", enable_batching=True, batching_parameters_file=
                            _batching_file(tmp_path, "max_batch_size { value: 64 } "
                                           "batch_timeout_micros { value: 3000000 } "
                                           "max_enqueued_batches { value: 1 } "
                                           "num_batch_threads { value: 1 }"))
    with pytest.raises(grpc.RpcError) as caught:
        stubs.prediction.Predict(predict_request(serialized_examples[:65]), timeout=10)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Task size 65 is larger than maximum input batch size 64")

    waiting = stubs.prediction.Predict.future(predict_request(serialized_examples[:1]), timeout=30)
    with pytest.raises(grpc.RpcError) as caught:  # 1 + 64 rows need a second batch: queue full
        for _ in range(50):  # until the first request has reached the queue
            stubs.prediction.Predict(predict_request(serialized_examples[:64]), timeout=10)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        "The batch scheduling queue to which this task was submitted is full")
    assert waiting.result().model_spec.version.value == 1


def test_sampled_prediction_log_is_written_as_readable_records(
        tmp_path, saved_model_dir, start_server, serialized_examples):
    push_version(saved_model_dir, tmp_path / "m", 3)
    prefix = tmp_path / "logs" / "big_tipper"
    handle, stubs = start_server(tmp_path / "m", prediction_log_file_prefix=str(prefix),
                                 prediction_log_sampling_rate=1.0,
                                 prediction_log_file_max_bytes=4000, prediction_log_max_files=2)
    for start in range(10):
        stubs.prediction.Predict(predict_request(serialized_examples[start:start + 3]), timeout=10)
    logger = handle.frontend.loggers[MODEL_NAME]
    logger.flush()
    files = logger.files()
    assert len(files) == 2, "rotated by size, only the newest two kept"
    entries = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
               for r in tf.data.TFRecordDataset(files)]
    assert entries
    last = entries[-1]
    assert last.log_metadata.model_spec.version.value == 3
    assert last.log_metadata.sampling_config.sampling_rate == 1.0
    assert list(last.predict_log.request.inputs[features.EXAMPLES_KEY].string_val) == \
        serialized_examples[9:12]
    assert len(last.predict_log.response.outputs[features.PREDICTION_KEY].float_val) == 3


def _self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_tls_with_client_verification_from_ssl_config_file(tmp_path, saved_model_dir,
                                                          serialized_examples, start_server):
    push_version(saved_model_dir, tmp_path / "m", 1)
    key, cert = _self_signed()  # also the client's certificate and the trusted CA
    ssl_file = tmp_path / "ssl.config"
    ssl_file.write_text(f"server_key: {key!r}\nserver_cert: {cert!r}\ncustom_ca: {cert!r}\n"
                        f"client_verify: true\n".replace("'", '"'))
    handle, _ = start_server(tmp_path / "m", ssl_config_file=str(ssl_file))
    target = f"localhost:{handle.port}"
    channels = {
        "with client certificate": grpc.secure_channel(target, grpc.ssl_channel_credentials(
            root_certificates=cert.encode(), private_key=key.encode(),
            certificate_chain=cert.encode())),
        "without client certificate": grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates=cert.encode())),
        "plaintext": grpc.insecure_channel(target),
    }
    try:
        request = predict_request(serialized_examples[:1])
        stubs = {name: prediction_service_pb2_grpc.PredictionServiceStub(channel)
                 for name, channel in channels.items()}
        assert stubs["with client certificate"].Predict(request, timeout=10).outputs
        for refused in ("without client certificate", "plaintext"):
            with pytest.raises(grpc.RpcError):
                stubs[refused].Predict(request, timeout=5)
    finally:
        for channel in channels.values():
            channel.close()


def _raw_tensor(dtype, shape, **values) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
    for field, value in values.items():
        if field == "tensor_content":
            proto.tensor_content = value
        else:
            getattr(proto, field).extend(value)
    return proto


MALFORMED = {
    "empty batch": _raw_tensor(types_pb2.DT_STRING, [0]),
    "garbage examples": _raw_tensor(types_pb2.DT_STRING, [2], string_val=[b"\xff\x00", b"junk"]),
    "shape/value mismatch": _raw_tensor(types_pb2.DT_STRING, [5], string_val=[b""]),
    "rank 2": _raw_tensor(types_pb2.DT_STRING, [1, 1], string_val=[b""]),
    "scalar": _raw_tensor(types_pb2.DT_STRING, [], string_val=[b""]),
    "int64 dtype": _raw_tensor(types_pb2.DT_INT64, [2], int64_val=[1, 2]),
    "bad tensor_content": _raw_tensor(types_pb2.DT_FLOAT, [3], tensor_content=b"\x00" * 5),
    "invalid dtype": _raw_tensor(types_pb2.DT_INVALID, [1]),
    "negative dim": _raw_tensor(types_pb2.DT_STRING, [-3]),
    "huge example": _raw_tensor(types_pb2.DT_STRING, [1], string_val=[b"\x0a" * 8_000_000]),
    # 4 TB of floats claimed by a few bytes: refused before any value is materialized.
    "huge float shape": _raw_tensor(types_pb2.DT_FLOAT, [1 << 40], float_val=[1.0]),
    "huge string shape": _raw_tensor(types_pb2.DT_STRING, [1 << 40], string_val=[b""]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_fail_cleanly_and_the_server_keeps_serving(
        case, tmp_path_factory, saved_model_dir, serialized_examples, fuzz_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs[features.EXAMPLES_KEY].CopyFrom(MALFORMED[case])
    try:
        response = fuzz_server.prediction.Predict(request, timeout=30)
        assert case in ("empty batch", "huge example")  # valid in TF: empty or default features
        assert len(response.outputs[features.PREDICTION_KEY].float_val) in (0, 1)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert fuzz_server.prediction.Predict(predict_request(serialized_examples[:1]), timeout=10).outputs


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, saved_model_dir):
    root = tmp_path_factory.mktemp("fuzz")
    push_version(saved_model_dir, root / "m", 1)
    with in_process_server(root / "m") as (_, stubs):
        yield stubs
