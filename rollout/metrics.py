"""The gateways' Prometheus metrics (`--metrics URL`): each version's requests, errors and p99
latency, and the histogram of its predicted probabilities, summed over every gateway pod."""
from __future__ import annotations

import socket
import time
import urllib.parse
import urllib.request
from typing import Iterable

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from ctpipe.rollout.figures import VersionFigures
from ctpipe.rollout.statistics import histogram_quantile
from ctpipe.serving.server.metrics import PREDICTION_PROBABILITY


def _endpoints(url: str) -> list[str]:
    """The URL once per address its host resolves to (a headless Service: every pod)."""
    parts = urllib.parse.urlsplit(url)
    addresses = sorted({info[4][0] for info in socket.getaddrinfo(
        parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)})
    netloc = lambda address: (f"[{address}]" if ":" in address else address) + (
        f":{parts.port}" if parts.port else "")
    return [urllib.parse.urlunsplit(parts._replace(netloc=netloc(a))) for a in addresses]


def scrape(urls: Iterable[str], model: str) -> dict[str, dict[tuple, float]]:
    """Sums of the gateway's samples over every endpoint: {sample name: {labels: value}}."""
    totals: dict[str, dict[tuple, float]] = {}
    for url in urls:
        for endpoint in _endpoints(url):
            with urllib.request.urlopen(endpoint, timeout=10) as answer:
                text = answer.read().decode()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.labels.get("model_name") != model:
                        continue
                    key = tuple(sorted((k, v) for k, v in sample.labels.items()
                                       if k != "model_name"))
                    by_labels = totals.setdefault(sample.name, {})
                    by_labels[key] = by_labels.get(key, 0.0) + sample.value
    return totals


def _delta(after: dict, before: dict) -> dict[str, dict[tuple, float]]:
    return {name: {key: value - before.get(name, {}).get(key, 0.0)
                   for key, value in samples.items()} for name, samples in after.items()}


def scrape_window(urls: Iterable[str], model: str,
                  window_seconds: float) -> dict[str, dict[tuple, float]]:
    """What the samples (cumulative counters) gained over `window_seconds`: two scrapes that far
    apart; 0: their totals since the gateways started."""
    urls = list(urls)
    before = scrape(urls, model) if window_seconds > 0 else {}
    if window_seconds > 0:
        time.sleep(window_seconds)
    return _delta(scrape(urls, model), before)


def _buckets(samples: dict[tuple, float], version: int) -> tuple[np.ndarray, np.ndarray]:
    """(upper bounds, cumulative counts) of one version's histogram, summed over routes."""
    counts: dict[float, float] = {}
    for key, value in samples.items():
        labels = dict(key)
        if labels.get("model_version") == str(version):
            bound = float(labels["le"])
            counts[bound] = counts.get(bound, 0.0) + value
    bounds = np.array(sorted(counts))
    return bounds, np.array([counts[b] for b in bounds])


def figures_from_metrics(samples: dict[str, dict[tuple, float]],
                         versions: dict[int, VersionFigures]) -> None:
    """Adds each version's requests, errors, p99 latency and prediction histogram (counts per
    bucket) from the samples of `scrape` or `scrape_window`."""
    requests = samples.get("ctpipe_gateway_requests_total", {})
    for version, figures in versions.items():
        answered = [(dict(key), value) for key, value in requests.items()
                    if dict(key).get("model_version") == str(version)]
        figures.requests = int(sum(value for _, value in answered))
        figures.errors = int(sum(value for labels, value in answered
                                 if labels.get("status") != "OK"))
        bounds, cumulative = _buckets(
            samples.get("ctpipe_gateway_request_latency_seconds_bucket", {}), version)
        figures.p99_seconds = histogram_quantile(bounds, cumulative, 0.99)
        if len(cumulative):
            figures.latency = (bounds, cumulative)
        bounds, cumulative = _buckets(samples.get(f"{PREDICTION_PROBABILITY}_bucket", {}), version)
        if len(cumulative) and cumulative[-1] > 0:
            figures.histogram = np.diff(np.concatenate([[0.0], cumulative]))[:-1]
