"""TF Serving's Prometheus metrics and ours, kept in a per-server `prometheus_client` registry.

TF Serving's names and labels: `:tensorflow:serving:request_count{model_name,status}` and the
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` histogram in microseconds.
prometheus_client renames every `counter` family to `<name>_total`, which TF Serving's name does
not have, so the request count is exposed as an untyped family whose samples carry the exact name.

Ours, per model version, so that an alert can fire between two runs of `ctpipe monitor`
(docs/monitoring.md): the predicted probability (`ctpipe_prediction_probability` histogram),
examples answered without a probability or with NaN (`ctpipe_prediction_null_total`), and
missing feature values (`ctpipe_feature_missing_total` over `ctpipe_examples_checked_total`).
Free of TensorFlow: requests and responses are only read field by field, so the classes of
`tensorflow_serving.apis` and of `ctpipe.serving.client.protos` both work (the gateway uses the latter).
"""
from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ctpipe.common import features
from ctpipe.serving.client import protos

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's latency buckets: 10 us growing by 1.8x, 33 of them.
_LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))

PREDICTION_PROBABILITY = "ctpipe_prediction_probability"
PREDICTION_NULL = "ctpipe_prediction_null"  # exposed as ..._total
EXAMPLES_CHECKED = "ctpipe_examples_checked"
FEATURE_MISSING = "ctpipe_feature_missing"
# Upper bounds of the probability histogram: 0.05 wide, so a share above any 0.05 step (e.g.
# "predicted big tipper", p > 0.5) and the quantiles to +-0.025 can be read from it.
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Examples of one request whose features are checked for missing values. Parsing a tf.Example
# costs about 12 us: every example of a batch-1 request is checked (+~1 % of its latency); a
# batch of 256 contributes a random sample of 16 instead of adding ~3 ms to a ~2 ms model run.
MAX_CHECKED_EXAMPLES = 16
_BOUNDS = np.array(PROBABILITY_BUCKETS)
_DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT


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


def served_examples(request: Any) -> Sequence[bytes] | None:
    """The serialized tf.Examples of a PredictRequest (input `examples`, DT_STRING), or None
    for a request without them (another model's named inputs)."""
    if features.EXAMPLES_KEY not in request.inputs:
        return None
    tensor = request.inputs[features.EXAMPLES_KEY]
    return tensor.string_val if tensor.dtype == protos.DT_STRING else None


def predicted_probabilities(response: Any, count: int | None = None) -> np.ndarray:
    """The probabilities of a PredictResponse (output `probability`, DT_FLOAT; typed field as
    this server writes it, or `tensor_content` as TF Serving may). With `count` (the request's
    examples): exactly that many, NaN for every example the response holds no value for."""
    found = np.empty(0, dtype=np.float32)
    if features.PREDICTION_KEY in response.outputs:
        tensor = response.outputs[features.PREDICTION_KEY]
        if tensor.dtype == _DT_FLOAT:
            found = (np.frombuffer(tensor.tensor_content, dtype="<f4") if tensor.tensor_content
                     else np.asarray(tensor.float_val, dtype=np.float32))
    if count is None or len(found) == count:
        return found
    values = np.full(count, np.nan, dtype=np.float32)
    values[:min(count, len(found))] = found[:count]
    return values


def _missing_features(serialized: bytes, names: Iterable[str]) -> list[str] | None:
    """The features of `names` that a serialized tf.Example lacks or holds with an empty value
    list (the model then uses their defaults); None if it is not a tf.Example."""
    try:
        feature_map = protos.Example.FromString(serialized).features.feature
    except DecodeError:
        return None
    missing = []
    for name in names:
        feature = feature_map.get(name)
        kind = feature.WhichOneof("kind") if feature is not None else None
        if kind is None or not getattr(feature, kind).value:
            missing.append(name)
    return missing


@dataclasses.dataclass
class _VersionCounts:
    """Everything observed for one (model name, version); guarded by `_Predictions._lock`."""

    buckets: np.ndarray  # per upper bound of PROBABILITY_BUCKETS, then +Inf; not cumulative
    total: float = 0.0
    nulls: int = 0
    checked: int = 0
    missing: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))


class _Predictions(Collector):
    """Prediction histogram and missing-value counts per model version. A request's values are
    reduced outside the lock and added under it at once: one short lock round per request."""

    def __init__(self, feature_names: Sequence[str]):
        self._features = tuple(feature_names)
        self._versions: dict[tuple[str, str], _VersionCounts] = {}
        self._lock = threading.Lock()

    def observe(self, model_name: str, version: int, request: Any, response: Any) -> None:
        examples = served_examples(request)
        probabilities = predicted_probabilities(
            response, len(examples) if examples is not None else None)
        answered = probabilities[~np.isnan(probabilities)]
        hits = np.bincount(np.searchsorted(_BOUNDS, answered, side="left"),
                           minlength=len(_BOUNDS) + 1)
        checked, missing = 0, defaultdict(int)
        if examples:
            sample = (examples if len(examples) <= MAX_CHECKED_EXAMPLES
                      else random.sample(list(examples), MAX_CHECKED_EXAMPLES))
            for serialized in sample:
                absent = _missing_features(serialized, self._features)
                if absent is None:  # not a tf.Example: the model would have refused it
                    continue
                checked += 1
                for name in absent:
                    missing[name] += 1
        key = (model_name, str(version))
        with self._lock:
            counts = self._versions.get(key)
            if counts is None:
                counts = self._versions[key] = _VersionCounts(np.zeros(len(hits), np.int64))
            counts.buckets += hits
            counts.total += float(answered.sum(dtype=np.float64))
            counts.nulls += len(probabilities) - len(answered)
            counts.checked += checked
            for name, number in missing.items():
                counts.missing[name] += number

    def collect(self):
        labels = ["model_name", "model_version"]
        histogram = HistogramMetricFamily(
            PREDICTION_PROBABILITY, "Predicted probability per model version (NaN excluded).",
            labels=labels)
        nulls = CounterMetricFamily(
            PREDICTION_NULL, "Examples answered with a NaN probability or without one.",
            labels=labels)
        checked = CounterMetricFamily(
            EXAMPLES_CHECKED, "Examples checked for missing feature values (at most "
            f"{MAX_CHECKED_EXAMPLES} per request, sampled).", labels=labels)
        missing = CounterMetricFamily(
            FEATURE_MISSING, "Checked examples lacking the feature or holding no value for it.",
            labels=[*labels, "feature"])
        with self._lock:
            snapshot = {key: dataclasses.replace(counts, buckets=counts.buckets.copy(),
                                                 missing=dict(counts.missing))
                        for key, counts in self._versions.items()}
        bounds = [floatToGoString(bound) for bound in (*PROBABILITY_BUCKETS, math.inf)]
        for key, counts in sorted(snapshot.items()):
            cumulative = np.cumsum(counts.buckets).tolist()
            histogram.add_metric(list(key), list(zip(bounds, cumulative)), counts.total)
            nulls.add_metric(list(key), counts.nulls)
            checked.add_metric(list(key), counts.checked)
            for name in self._features:
                missing.add_metric([*key, name], counts.missing.get(name, 0))
        yield from (histogram, nulls, checked, missing)


class ServerMetrics:
    def __init__(self, feature_names: Sequence[str] = features.FEATURE_NAMES):
        """`feature_names`: the features whose missing values are counted (the model's)."""
        self.registry = CollectorRegistry()
        self._requests = _Counts(REQUEST_COUNT, "The total number of requests.",
                                 ("model_name", "status"))
        self.registry.register(self._requests)
        self._latency = Histogram(REQUEST_LATENCY, "Distribution of wall time (in microseconds) "
                                  "for Tensorflow Serving request.",
                                  ("model_name", "API", "entrypoint"),
                                  buckets=_LATENCY_BUCKETS_US, registry=self.registry)
        self._predictions = _Predictions(feature_names)
        self.registry.register(self._predictions)

    def observe_request(self, model_name: str, api: str, entrypoint: str, status: str,
                        seconds: float) -> None:
        self._requests.inc(model_name, status)
        self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def observe_predictions(self, model_name: str, version: int, request: Any,
                            response: Any) -> None:
        """Records a successful Predict call of `version`: its probabilities in the histogram
        (NaN or absent ones as nulls) and the missing values of up to MAX_CHECKED_EXAMPLES of its
        examples. Cheap enough for the request path (~15 us for one example)."""
        self._predictions.observe(model_name, version, request, response)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
