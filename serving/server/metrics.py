"""TF Serving's Prometheus metrics, kept in a per-server `prometheus_client` registry.

Names and labels are TF Serving's: `:tensorflow:serving:request_count{model_name,status}` and the
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` histogram in microseconds.
prometheus_client renames every `counter` family to `<name>_total`, which TF Serving's name does
not have, so the request count is exposed as an untyped family whose samples carry the exact name.
"""
from __future__ import annotations

import threading
from collections import defaultdict

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's latency buckets: 10 us growing by 1.8x, 33 of them.
_LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))


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

    def observe_request(self, model_name: str, api: str, entrypoint: str, status: str,
                        seconds: float) -> None:
        self._requests.inc(model_name, status)
        self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
