"""TF Serving's request semantics (Predict, Classify, Regress, MultiInference, metadata), shared
by the gRPC and REST front ends. Every failure is a `RequestError` with TF Serving's code and
message; the front ends only translate it.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from ctpipe.serving.server.errors import RequestError, invalid
from ctpipe.serving.server.lifecycle import ModelManager
from ctpipe.serving.server.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    Servable,
    Signature,
    array_to_tensor,
    dtype_name,
    tensor_to_array,
)

log = logging.getLogger(__name__)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000

# Runs a signature on checked inputs within `timeout` seconds (None: no deadline).
Runner = Callable[[Servable, Signature, Mapping[str, np.ndarray], "float | None"],
                  dict[str, np.ndarray]]


def _joined(names) -> str:
    return ",".join(sorted(names))


def direct_runner(servable: Servable, signature: Signature, inputs: Mapping[str, np.ndarray],
                  timeout: float | None) -> dict[str, np.ndarray]:
    """No batching: the calling thread runs the model (no hand-off, lowest latency)."""
    return signature.run(inputs)


def deadline_left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    return left


class InferenceService:
    """The request semantics; `runner` decides how the model run happens (direct or batched)."""

    def __init__(self, manager: ModelManager, runner: Runner = direct_runner,
                 method_name_check: bool = False):
        self.manager = manager
        self.runner = runner
        self.method_name_check = method_name_check

    # ---- Predict ------------------------------------------------------------------------
    def predict(self, request: predict_pb2.PredictRequest,
                deadline: float | None = None) -> tuple[Servable, predict_pb2.PredictResponse]:
        return self._on_resolved(self.predict_on, request, deadline)

    def predict_on(self, servable: Servable, request: predict_pb2.PredictRequest,
                   deadline: float | None = None) -> predict_pb2.PredictResponse:
        """Predict on a given version (warm-up replays on a version not yet AVAILABLE)."""
        signature, inputs = self._checked_inputs(servable, request)
        outputs = self.runner(servable, signature, inputs, deadline_left(deadline))
        response = predict_pb2.PredictResponse()
        self._fill_spec(response.model_spec, servable, signature.name)
        for alias in (request.output_filter or signature.outputs):
            response.outputs[alias].CopyFrom(
                array_to_tensor(outputs[alias], signature.outputs[alias].dtype))
        return response

    @staticmethod
    def _checked_inputs(servable: Servable, request: predict_pb2.PredictRequest
                        ) -> tuple[Signature, dict[str, np.ndarray]]:
        """Every check TF Serving makes before the model runs; inputs converted to numpy."""
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature = servable.signatures.get(name)
        if signature is None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{name}" not found.')
        sent, expected = set(request.inputs), set(signature.inputs)
        if len(sent) != len(expected):
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{_joined(sent)}}}) != len({{{_joined(expected)}}}). "
                f"Sent extra: {{{_joined(sent - expected)}}}. "
                f"Missing but required: {{{_joined(expected - sent)}}}.")
        for alias in sorted(sent - expected):
            raise invalid(f"input tensor alias not found in signature: {alias}. Inputs expected "
                          f"to be in the set {{{_joined(expected)}}}.")
        for alias in request.output_filter:
            if alias not in signature.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs "
                              f"expected to be in the set {{{_joined(signature.outputs)}}}.")
        arrays = {}
        for alias, proto in request.inputs.items():
            signature.check_input(alias, proto)
            arrays[alias] = tensor_to_array(proto, alias)
        return signature, arrays

    # ---- Classify / Regress -------------------------------------------------------------
    def _examples_signature(self, servable: Servable, spec, method: str,
                            kind: str) -> tuple[Signature, str, str]:
        """TF Serving's checks of a Classify/Regress signature: its method name only with
        --enable_signature_method_name_check (TF2 exports every signature as a predict one),
        otherwise its shape: one DT_STRING input that takes the serialized examples."""
        name = spec.signature_name or DEFAULT_SIGNATURE
        signature = servable.signatures.get(name)
        if signature is None:
            raise invalid(f"No signature was found with the name: {name}")
        if self.method_name_check and signature.method_name != method:
            raise invalid(f"Expected {kind} signature method_name to be {method}. Was: "
                          f"{signature.method_name}")
        if len(signature.inputs) != 1:
            raise invalid("Expected one input Tensor.")
        alias = next(iter(signature.inputs))
        if signature.inputs[alias].dtype != types_pb2.DT_STRING:
            raise invalid(f"Expects arg[0] to be {dtype_name(signature.inputs[alias].dtype)} "
                          "but string is provided")
        return signature, name, alias

    @staticmethod
    def _serialized_examples(model_input: input_pb2.Input) -> np.ndarray:
        kind = model_input.WhichOneof("kind")
        if kind == "example_list":
            serialized = [e.SerializeToString() for e in model_input.example_list.examples]
        elif kind == "example_list_with_context":
            with_context = model_input.example_list_with_context
            serialized = []
            for example in with_context.examples:
                merged = type(example)()
                merged.CopyFrom(with_context.context)
                merged.MergeFrom(example)
                serialized.append(merged.SerializeToString())
        else:
            raise invalid("Input is empty.")
        if not serialized:
            raise invalid("Input is empty.")
        values = np.empty(len(serialized), dtype=object)
        values[:] = serialized
        return values

    def _classify_result(self, servable, spec, model_input, deadline):
        signature, name, alias = self._examples_signature(servable, spec, CLASSIFY_METHOD,
                                                          "classification")
        outputs_info = signature.outputs
        if len(outputs_info) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(outputs_info)}")
        if "classes" not in outputs_info and "scores" not in outputs_info:
            raise invalid("Expected classification signature outputs to contain at least one "
                          "of classes or scores")
        if "classes" in outputs_info and outputs_info["classes"].dtype != types_pb2.DT_STRING:
            raise invalid("Expected classes Tensor of DT_STRING. Got: "
                          + types_pb2.DataType.Name(outputs_info["classes"].dtype))
        if "scores" in outputs_info and outputs_info["scores"].dtype != types_pb2.DT_FLOAT:
            raise invalid("Expected scores Tensor of DT_FLOAT. Got: "
                          + types_pb2.DataType.Name(outputs_info["scores"].dtype))
        examples = self._serialized_examples(model_input)
        outputs = self.runner(servable, signature, {alias: examples}, deadline_left(deadline))
        classes, scores = outputs.get("classes"), outputs.get("scores")
        for tensor, what in ((classes, "classes"), (scores, "scores")):
            if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != len(examples)):
                raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got "
                              f"{list(tensor.shape)} for {what}")
        result = classification_pb2.ClassificationResult()
        for row in range(len(examples)):
            width = (classes if classes is not None else scores).shape[1]
            classifications = result.classifications.add()
            for column in range(width):
                entry = classifications.classes.add()
                if classes is not None:
                    entry.label = classes[row, column].decode()
                if scores is not None:
                    entry.score = float(scores[row, column])
        return result, name

    def _regress_result(self, servable, spec, model_input, deadline):
        signature, name, alias = self._examples_signature(servable, spec, REGRESS_METHOD,
                                                          "regression")
        if len(signature.outputs) != 1:
            raise invalid("Expected one output Tensor.")
        if "outputs" not in signature.outputs:
            raise invalid("No regression outputs found in signature; expected the output "
                          "alias outputs")
        examples = self._serialized_examples(model_input)
        outputs = self.runner(servable, signature, {alias: examples}, deadline_left(deadline))
        values = outputs["outputs"]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or values.shape[0] != len(examples):
            raise invalid(f"Expected output Tensor shape to be either [batch_size] or "
                          f"[batch_size, 1] but got {list(outputs['outputs'].shape)}")
        result = regression_pb2.RegressionResult()
        for value in values.tolist():
            result.regressions.add(value=float(value))
        return result, name

    def classify(self, request, deadline=None):
        return self._on_resolved(self.classify_on, request, deadline)

    def classify_on(self, servable, request, deadline=None):
        return self._examples_response(classification_pb2.ClassificationResponse,
                                       self._classify_result, servable, request, deadline)

    def regress(self, request, deadline=None):
        return self._on_resolved(self.regress_on, request, deadline)

    def regress_on(self, servable, request, deadline=None):
        return self._examples_response(regression_pb2.RegressionResponse,
                                       self._regress_result, servable, request, deadline)

    def _examples_response(self, response_class: type, result_of: Callable, servable: Servable,
                           request, deadline: float | None):
        """A Classify/Regress response: `result_of`'s result and the served version."""
        result, name = result_of(servable, request.model_spec, request.input, deadline)
        response = response_class(result=result)
        self._fill_spec(response.model_spec, servable, name)
        return response

    def multi_inference(self, request: inference_pb2.MultiInferenceRequest, deadline=None):
        if not request.tasks:
            raise invalid("MultiInferenceRequest must contain at least one task")
        names = {task.model_spec.name for task in request.tasks}
        if len(names) > 1:
            raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        signatures = [task.model_spec.signature_name or DEFAULT_SIGNATURE for task in request.tasks]
        if len(set(signatures)) != len(signatures):
            raise invalid("Duplicate evaluation of signature: "
                          + next(s for s in signatures if signatures.count(s) > 1))
        servable = self.manager.resolve(request.tasks[0].model_spec)
        return servable, self.multi_inference_on(servable, request, deadline)

    def multi_inference_on(self, servable, request, deadline=None):
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                classification, name = self._classify_result(servable, task.model_spec,
                                                             request.input, deadline)
                result.classification_result.CopyFrom(classification)
            elif task.method_name == REGRESS_METHOD:
                regression, name = self._regress_result(servable, task.model_spec,
                                                        request.input, deadline)
                result.regression_result.CopyFrom(regression)
            else:
                raise invalid(f"Unsupported signature method_name: {task.method_name}")
            self._fill_spec(result.model_spec, servable, name)
        return response

    def _on_resolved(self, method_on: Callable, request, deadline: float | None
                     ) -> tuple[Servable, object]:
        """Resolves the request's model_spec, then runs `method_on` on that version."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        servable = self.manager.resolve(request.model_spec)
        return servable, method_on(servable, request, deadline)

    @staticmethod
    def _fill_spec(spec, servable: Servable, signature_name: str) -> None:
        spec.name, spec.version.value, spec.signature_name = (servable.model_name,
                                                              servable.version, signature_name)

    # ---- metadata -----------------------------------------------------------------------
    def metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest
                 ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        servable = self.manager.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name, response.model_spec.version.value = (servable.model_name,
                                                                       servable.version)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    # ---- warm-up ------------------------------------------------------------------------
    def warmup(self, servable: Servable) -> None:
        """Replays `assets.extra/tf_serving_warmup_requests` on a version before it is
        AVAILABLE; any failure fails the load, as in TF Serving."""
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.isfile(path):
            return

        replayers = {
            "predict_log": lambda entry: self.predict_on(servable, entry.request),
            "classify_log": lambda entry: self.classify_on(servable, entry.request),
            "regress_log": lambda entry: self.regress_on(servable, entry.request),
            "multi_inference_log": lambda entry: self.multi_inference_on(servable, entry.request),
        }
        count = 0
        for record in tf.compat.v1.io.tf_record_iterator(path):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Number of warmup records exceeds the maximum "
                                   f"({MAX_WARMUP_RECORDS}) at {path}")
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            kind = entry.WhichOneof("log_type")
            if kind not in replayers:
                raise invalid(f"Unsupported log_type for warmup: {kind}")
            replayers[kind](getattr(entry, kind))
        log.info("warmed up version %s of %s with %d requests", servable.version,
                 servable.model_name, count)

