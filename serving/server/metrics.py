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
import bisect
import itertools
import threading
from collections import defaultdict
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics_core import (CounterMetricFamily, HistogramMetricFamily,
                                           Metric)
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
_FEATURE_SET = frozenset(features.FEATURE_NAMES)


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


class _Predictions(Collector):
    """The prediction histogram, example and missing-value counts per model version, kept in
    plain lists under one lock: an observation costs one lock and a few additions, where a
    prometheus_client child costs microseconds per increment (this runs on every request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (model, version) -> [bucket counts (last: +Inf), sum, examples, missing per feature]
        self._versions: dict[tuple[str, int], list] = {}

    def observe(self, model_name: str, version: int, values: Any,
                missing: list[int], examples: int) -> None:
        with self._lock:
            state = self._versions.get((model_name, version))
            if state is None:
                state = self._versions[(model_name, version)] = [
                    [0] * (len(PREDICTION_BUCKETS) + 1), 0.0, 0, [0] * len(missing)]
            buckets = state[0]
            for value in values:
                if value == value:  # NaN is no probability: not counted
                    buckets[bisect.bisect_left(PREDICTION_BUCKETS, value)] += 1
                    state[1] += value
            state[2] += examples
            state[3] = [a + b for a, b in zip(state[3], missing)]

    def collect(self):
        with self._lock:
            versions = {key: [list(state[0]), state[1], state[2], list(state[3])]
                        for key, state in self._versions.items()}
        histogram = HistogramMetricFamily(PREDICTION, "Predicted probability per model "
                                          "version.", labels=("model_name", "model_version"))
        scored = CounterMetricFamily(EXAMPLES, "Examples scored per model version.",
                                     labels=("model_name", "model_version"))
        missing = CounterMetricFamily(MISSING_VALUES, "Scored examples without a value for a "
                                      "feature (absent or empty), per model version.",
                                      labels=("model_name", "model_version", "feature"))
        for (model_name, version), (buckets, total, examples, absent) in sorted(
                versions.items()):
            labels = [model_name, str(version)]
            cumulative = list(itertools.accumulate(buckets))
            bounds = [str(b) for b in PREDICTION_BUCKETS] + ["+Inf"]
            histogram.add_metric(labels, list(zip(bounds, cumulative)), total)
            scored.add_metric(labels, examples)
            for name, count in zip(features.FEATURE_NAMES, absent):
                if count:
                    missing.add_metric(labels + [name], count)
        yield from (histogram, scored, missing)


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

        self._predictions = _Predictions()
        self.registry.register(self._predictions)
        self._example_classes: dict[Any, type[Message]] = {}
        self._latency_children: dict[tuple[str, str, str], Any] = {}

    def observe_request(self, model_name: str, api: str, entrypoint: str, status: str,
                        seconds: float) -> None:
        self._requests.inc(model_name, status)
        key = (model_name, api, entrypoint)
        child = self._latency_children.get(key)
        if child is None:  # labels() costs microseconds: once per combination
            child = self._latency_children[key] = self._latency.labels(*key)
        child.observe(seconds * 1e6)

    def observe_predictions(self, model_name: str, version: int, request: Any,
                            response: Any) -> None:
        """Records a successful Predict: each probability, each example and its missing
        features. Calls without our `examples` input and `probability` output (other models)
        are skipped."""
        if (features.PREDICTION_KEY not in response.outputs
                or features.EXAMPLES_KEY not in request.inputs):
            return
        output = response.outputs[features.PREDICTION_KEY]
        serialized = request.inputs[features.EXAMPLES_KEY].string_val
        example_class = self._example_class(request)
        missing = [0] * len(features.FEATURE_NAMES)
        for data in serialized:
            try:
                entries = example_class.FromString(data).features.feature.items()
            except DecodeError:
                continue  # the model answered, so this cannot happen; never fail a request
            # A value list with no values serializes to 2 bytes (its tag and a 0 length);
            # one pass over the entries is several times faster than a lookup per feature.
            valued = {name for name, feature in entries if feature.ByteSize() > 2}
            if not _FEATURE_SET <= valued:
                for index, name in enumerate(features.FEATURE_NAMES):
                    if name not in valued:
                        missing[index] += 1
        self._predictions.observe(model_name, version,
                                  output.float_val or array.array("f", output.tensor_content),
                                  missing, len(serialized))

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
