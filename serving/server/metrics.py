"""TF Serving's Prometheus metrics and what the model answers, kept in a per-server
`prometheus_client` registry.

Names and labels are TF Serving's: `:tensorflow:serving:request_count{model_name,status}` and the
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` histogram in microseconds.
prometheus_client renames every `counter` family to `<name>_total`, which TF Serving's name does
not have, so the request count is exposed as an untyped family whose samples carry the exact name.

Ours, per model version, so an alert can fire without waiting for a log analysis:
`ctpipe_prediction` (histogram of the predicted probability), `ctpipe_examples_total` and
`ctpipe_missing_values_total{feature}` (examples scored, and those lacking each feature).
`observe_predictions` reads them off the Predict request and response protos, of either
TensorFlow's classes (`ctpipe serve`) or the client's (`ctpipe gateway`): no TensorFlow here.
"""
from __future__ import annotations

import array
import dataclasses
import threading
from collections import defaultdict
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from models import features

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's latency buckets: 10 us growing by 1.8x, 33 of them.
_LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))
PREDICTION = "ctpipe_prediction"
EXAMPLES = "ctpipe_examples"
MISSING_VALUES = "ctpipe_missing_values"
# Probability buckets: 0.05 wide, so distances between versions' distributions can be read
# off the histogram.
PREDICTION_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


class _Counts(Collector):
    """A thread-safe labelled counter exposed under an exact (suffix-free) sample name."""

    def __init__(self, name: str, documentation: str, label_names: tuple[str, ...]):
        self._name, self._documentation, self._label_names = name, documentation, label_names
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *labels: str) -> None:
        with self._lock:
            self._values[labels] += 1

    def collect(self):
        metric = Metric(self._name, self._documentation, "unknown")
        with self._lock:
            values = dict(self._values)
        for labels, value in sorted(values.items()):
            metric.add_sample(self._name, dict(zip(self._label_names, labels)), value)
        yield metric


@dataclasses.dataclass(frozen=True)
class _VersionChildren:
    """One model version's metric children."""

    predictions: Any
    examples: Any
    missing: dict[str, Any]


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self._requests = _Counts(REQUEST_COUNT, "The total number of requests.",
                                 ("model_name", "status"))
        self.registry.register(self._requests)
        self._latency = Histogram(REQUEST_LATENCY, "Distribution of wall time (in microseconds) "
                                  "for Tensorflow Serving request.",
                                  ("model_name", "API", "entrypoint"),
                                  buckets=_LATENCY_BUCKETS_US, registry=self.registry)

        self._predictions = Histogram(PREDICTION, "Predicted probability per model version.",
                                      ("model_name", "model_version"),
                                      buckets=PREDICTION_BUCKETS, registry=self.registry)
        self._examples = Counter(EXAMPLES, "Examples scored per model version.",
                                 ("model_name", "model_version"), registry=self.registry)
        self._missing = Counter(MISSING_VALUES, "Scored examples without a value for a "
                                "feature (absent or empty), per model version.",
                                ("model_name", "model_version", "feature"),
                                registry=self.registry)
        self._example_classes: dict[Any, type[Message]] = {}
        self._version_children: dict[tuple[str, int], _VersionChildren] = {}

    def observe_request(self, model_name: str, api: str, entrypoint: str, status: str,
                        seconds: float) -> None:
        self._requests.inc(model_name, status)
        self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def observe_predictions(self, model_name: str, version: int, request: Any,
                            response: Any) -> None:
        """Records a successful Predict: each probability, each example and its missing
        features. Calls without our `examples` input and `probability` output (other models)
        are skipped."""
        if (features.PREDICTION_KEY not in response.outputs
                or features.EXAMPLES_KEY not in request.inputs):
            return
        children = self._version_children.get((model_name, version))
        if children is None:  # labels() costs microseconds: look each child up once
            label = str(version)
            children = self._version_children[(model_name, version)] = _VersionChildren(
                self._predictions.labels(model_name, label),
                self._examples.labels(model_name, label),
                {name: self._missing.labels(model_name, label, name)
                 for name in features.FEATURE_NAMES})
        output = response.outputs[features.PREDICTION_KEY]
        for value in output.float_val or array.array("f", output.tensor_content):
            children.predictions.observe(value)
        serialized = request.inputs[features.EXAMPLES_KEY].string_val
        example_class = self._example_class(request)
        missing = dict.fromkeys(features.FEATURE_NAMES, 0)
        for data in serialized:
            try:
                entries = example_class.FromString(data).features.feature.items()
            except DecodeError:
                continue  # the model answered, so this cannot happen; never fail a request
            # A value list with no values serializes to 2 bytes (its tag and a 0 length);
            # one pass over the entries is several times faster than a lookup per feature.
            valued = {name for name, feature in entries if feature.ByteSize() > 2}
            for name in features.FEATURE_NAMES:
                if name not in valued:
                    missing[name] += 1
        children.examples.inc(len(serialized))
        for name, count in missing.items():
            if count:
                children.missing[name].inc(count)

    def _example_class(self, request: Any) -> type[Message]:
        """tf.Example from the request's own descriptor pool (TensorFlow's or the client's)."""
        pool = request.DESCRIPTOR.file.pool
        found = self._example_classes.get(pool)
        if found is None:
            found = self._example_classes[pool] = GetMessageClass(
                pool.FindMessageTypeByName("tensorflow.Example"))
        return found

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
