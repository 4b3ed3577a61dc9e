"""Real SavedModels made by our own model code, and helpers that push versions like the Pusher."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from ctpipe.common import features
from ctpipe.models.export import serving_function
from ctpipe.serving.server.flags import ServerOptions
from ctpipe.serving.server.model_server import start

MODEL_NAME = "big_tipper"


@pytest.fixture(scope="session")
def classify_model_dir(tmp_path_factory, trained_model) -> Path:
    """The same model with a classification signature whose method name is the classify one
    (as an Estimator export has it) and a regression signature left a predict one (as every
    TF2 export is), for TF Serving's signature checks with and without method names."""
    serve = serving_function(trained_model)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(inputs):
        probability = serve(examples=inputs)[features.PREDICTION_KEY]
        batch = tf.shape(probability)[0]
        return {"scores": tf.stack([1 - probability, probability], axis=1),
                "classes": tf.tile(tf.constant([["0", "1"]]), [batch, 1])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(inputs):
        return {"outputs": serve(examples=inputs)[features.PREDICTION_KEY]}

    export_dir = tmp_path_factory.mktemp("export") / "classify_model"
    tf.saved_model.save(trained_model, str(export_dir), signatures={
        "serving_default": serve, "classification": classify.get_concrete_function(),
        "regression": regress.get_concrete_function()})
    pb = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    signature_defs = saved_model.meta_graphs[0].signature_def
    signature_defs["classification"].method_name = "tensorflow/serving/classify"
    pb.write_bytes(saved_model.SerializeToString())
    return export_dir


@pytest.fixture(scope="session")
def slow_model_dir(tmp_path_factory) -> Path:
    """A SavedModel whose `serving_default` (examples -> probability, like ours) takes about
    2 s per call: it waits in TensorFlow's own sleep op, not in Python."""
    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                    name=features.EXAMPLES_KEY)])
        def serve(self, examples):
            sleeping = tf.raw_ops.SleepDataset(
                input_dataset=tf.data.experimental.to_variant(tf.data.Dataset.range(1)),
                sleep_microseconds=1_000_000, output_types=[tf.int64], output_shapes=[[]])
            waited = tf.data.experimental.from_variant(
                sleeping, tf.TensorSpec([], tf.int64)).reduce(tf.constant(0, tf.int64),
                                                              lambda total, n: total + n)
            return {features.PREDICTION_KEY: tf.zeros(tf.shape(examples))
                    + tf.cast(waited, tf.float32)}

    module = Slow()
    export_dir = tmp_path_factory.mktemp("export") / "slow_model"
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})
    return export_dir


def push_version(template: Path, base_path: Path, version: int) -> Path:
    """Copies a SavedModel into base_path/version the way the TFX Pusher does
    (into place, `saved_model.pb` last)."""
    target = base_path / str(version)
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    shutil.copy2(template / "saved_model.pb", target / "saved_model.pb")
    return target


@pytest.fixture(scope="session")
def reference_scores(saved_model_dir, serialized_examples) -> np.ndarray:
    """What the exported signature returns in-process: served results must equal these."""
    signature = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    return signature(examples=tf.constant(serialized_examples))[features.PREDICTION_KEY].numpy()


class Stubs:
    """gRPC stubs of one running server."""

    def __init__(self, port: int, credentials=None):
        target = f"127.0.0.1:{port}"
        self.channel = (grpc.secure_channel(target, credentials) if credentials
                        else grpc.insecure_channel(target))
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self):
        self.channel.close()


@contextlib.contextmanager
def in_process_server(base_path: Path | None = None, **changes) -> Iterator[tuple[Any, Stubs]]:
    """`ctpipe serve` started in this process on a free port, serving `base_path` as model
    big_tipper (or a --model_config_file in `changes`, any ServerOptions field); stopped on
    exit. Yields (ServerHandle, Stubs)."""
    handle = start(ServerOptions(port=0, model_name=MODEL_NAME,
                                 model_base_path=str(base_path) if base_path else "", **changes))
    stubs = Stubs(handle.port)
    try:
        yield handle, stubs
    finally:
        stubs.close()
        handle.stop(grace_seconds=0)


@pytest.fixture
def start_server():
    """Factory: start(base_path=..., **ServerOptions fields) -> (handle, Stubs); stops them all."""
    with contextlib.ExitStack() as started:
        yield lambda base_path=None, **changes: started.enter_context(
            in_process_server(base_path, **changes))


def predict_request(examples: list[bytes], name: str = MODEL_NAME, **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs[features.EXAMPLES_KEY].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return request


@pytest.fixture(scope="session")
def shifted_model_dir(tmp_path_factory, trained_model) -> Path:
    """Our model with every probability moved up by 0.4 (capped at 1): a canary that answers,
    but answers differently from stable."""
    serve = serving_function(trained_model)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_KEY)])
    def shifted(examples):
        probability = serve(examples=examples)[features.PREDICTION_KEY]
        return {features.PREDICTION_KEY: tf.minimum(probability + 0.4, 1.0)}

    export_dir = tmp_path_factory.mktemp("export") / "shifted_model"
    tf.saved_model.save(trained_model, str(export_dir),
                        signatures={"serving_default": shifted.get_concrete_function()})
    return export_dir


@pytest.fixture(scope="session")
def constant_model_dir(tmp_path_factory) -> Path:
    """A SavedModel with our signature that answers 0.5 for every trip."""
    class Constant(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                    name=features.EXAMPLES_KEY)])
        def serve(self, examples):
            return {features.PREDICTION_KEY: tf.fill(tf.shape(examples), 0.5)}

    module = Constant()
    export_dir = tmp_path_factory.mktemp("export") / "constant_model"
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})
    return export_dir
