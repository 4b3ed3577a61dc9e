"""Forwarding one call to the backend: routing, the canary fallback, the shadow copy, metrics
and the prediction log. Shared by the gRPC and REST fronts (`grpc_front`, `rest_front`), which
only translate their transport into `Call`s.

The request body is parsed once (the client's proto classes, no TensorFlow) to read its model
spec; a default-path request is re-serialized with the chosen label, any other is forwarded as
the bytes that arrived. The backend's answer goes back unchanged.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

import grpc
from prometheus_client import Counter, Histogram

from ctpipe.common.policies import CANARY, SHADOW, STABLE
from ctpipe.serving.gateway.routing import NoStableVersion, Router
from ctpipe.serving.prediction_log import PredictionLogger
from ctpipe.serving.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

PINNED = "pinned"  # the request named a version or label itself
# Route latency buckets (seconds): 0.25 ms to about 16 s.
_LATENCY_BUCKETS = tuple(0.00025 * 2 ** i for i in range(17))
# Errors meaning "the canary's version is not served (any more)".
_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
         grpc.StatusCode.FAILED_PRECONDITION)


class BackendError(Exception):
    """The backend's (or the gateway's own) error answer: a gRPC code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def version_gone(err: BackendError) -> bool:
    """Whether an error says the label's version is not served, as TF Serving words it."""
    return err.code in _GONE and ("Servable not found" in err.message
                                  or "Unrecognized servable version label" in err.message
                                  or "not currently available" in err.message)


class GatewayMetrics(ServerMetrics):
    """TF Serving's metrics and the prediction/missing-value ones (`ServerMetrics`), plus the
    gateway's per route and version: what `ctpipe rollout analyze` compares."""

    def __init__(self) -> None:
        super().__init__()
        labels = ("model_name", "route", "model_version")
        self.routed = Counter("ctpipe_gateway_requests", "Requests per route, version and "
                              "status.", labels + ("status",), registry=self.registry)
        self.route_latency = Histogram("ctpipe_gateway_request_latency_seconds",
                                       "Backend answer time per route and version.", labels,
                                       buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.shadow_dropped = Counter("ctpipe_gateway_shadow_dropped", "Shadow copies not "
                                      "sent: too many in flight.", ("model_name",),
                                      registry=self.registry)
        self.canary_fallbacks = Counter("ctpipe_gateway_canary_fallbacks", "Canary requests "
                                        "answered by stable because the canary's version was "
                                        "not served.", ("model_name",), registry=self.registry)
        self._route_children: dict[tuple, tuple[Any, Any]] = {}

    def observe_route(self, model: str, route: str, version: int | None, status: str,
                      seconds: float) -> None:
        key = (model, route, version, status)
        children = self._route_children.get(key)
        if children is None:  # labels() costs microseconds on every request otherwise
            label = "" if version is None else str(version)
            children = self._route_children[key] = (
                self.routed.labels(model, route, label, status),
                self.route_latency.labels(model, route, label))
        children[0].inc()
        children[1].observe(seconds)


# Calls the backend with the request labelled so (None: the request as it arrived) and
# returns the answer's bytes; raises BackendError.
Send = Callable[["str | None"], Awaitable[bytes]]
# The version that answered (None when the answer does not say) and the parsed answer.
Decode = Callable[[bytes], "tuple[int | None, Any]"]


@dataclasses.dataclass
class Answer:
    """What the caller gets, and what was learnt on the way (for logs and metrics)."""

    body: bytes
    route: str
    version: int | None
    parsed: Any
    shadow: bool  # the model has a shadow: mirror this request


class Forwarder:
    """The traffic policy applied to one call; `send` does the transport (gRPC or REST)."""

    def __init__(self, router: Router, metrics: GatewayMetrics,
                 loggers: dict[str, PredictionLogger], *, shadow_max_in_flight: int,
                 shadow_timeout: float):
        self.router, self.metrics, self.loggers = router, metrics, loggers
        self.shadow_max_in_flight = shadow_max_in_flight
        self.shadow_timeout = shadow_timeout
        self._shadows_in_flight = 0
        self._shadow_tasks: set[asyncio.Task] = set()

    async def forward(self, model: str, pinned: bool, key: str, send: Send,
                      decode: Decode) -> Answer:
        """Routes one call: a pinned one (naming a version or label) unchanged, a default one
        to canary or stable by `key` (the route key, else the request id); a canary whose
        version is not served is answered by stable. Raises BackendError with the code and
        message the caller must get."""
        if pinned:
            return await self._timed(model, PINNED, None, False, send, decode)
        try:
            route = self.router.route(model, key)
        except NoStableVersion as err:
            raise BackendError(grpc.StatusCode.FAILED_PRECONDITION, str(err)) from None
        if route.label == CANARY:
            try:
                return await self._timed(model, CANARY, CANARY, route.shadow, send, decode)
            except BackendError as err:
                if not version_gone(err):
                    raise
                self.router.pause_canary(model)
                self.metrics.canary_fallbacks.labels(model).inc()
        return await self._timed(model, STABLE, STABLE, route.shadow, send, decode)

    async def _timed(self, model: str, route: str, label: str | None, shadow: bool,
                     send: Send, decode: Decode) -> Answer:
        expected = None if label is None else self.router.version(model, label)
        started = time.perf_counter()
        try:
            body = await send(label)
        except BackendError as err:
            self.metrics.observe_route(model, route, expected, err.code.name,
                                       time.perf_counter() - started)
            raise
        version, parsed = decode(body)
        if version is None:
            version = expected
        self.metrics.observe_route(model, route, version, "OK", time.perf_counter() - started)
        return Answer(body, route, version, parsed, shadow)

    def mirror(self, model: str, send: Send, done: Callable[[bytes], None]) -> None:
        """Sends a shadow copy in the background if the model has a shadow: bounded (dropped
        when `shadow_max_in_flight` copies are out), never awaited by the caller; `done`
        receives its answer (to log it)."""
        if self._shadows_in_flight >= self.shadow_max_in_flight:
            self.metrics.shadow_dropped.labels(model).inc()
            return
        self._shadows_in_flight += 1
        task = asyncio.get_running_loop().create_task(self._shadow(model, send, done))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, model: str, send: Send, done: Callable[[bytes], None]) -> None:
        started = time.perf_counter()
        version = self.router.version(model, SHADOW)
        try:
            body = await asyncio.wait_for(send(SHADOW), self.shadow_timeout)
            status = "OK"
            done(body)
        except BackendError as err:
            status = err.code.name
        except asyncio.TimeoutError:
            status = grpc.StatusCode.DEADLINE_EXCEEDED.name
        except Exception:  # noqa: BLE001 - a shadow must never disturb serving
            log.exception("shadow copy of a %s request failed", model)
            status = grpc.StatusCode.INTERNAL.name
        finally:
            self._shadows_in_flight -= 1
        self.metrics.observe_route(model, SHADOW, version, status, time.perf_counter() - started)

    def sampled_logger(self, model: str, request_id: str) -> PredictionLogger | None:
        """The model's prediction log if this request is to be logged, else None."""
        logger = self.loggers.get(model)
        return logger if logger is not None and logger.sampled(request_id) else None

    def record(self, logger: PredictionLogger | None, model: str, version: int | None,
               request: Any, response: Any, request_id: str) -> None:
        """Prediction metrics of one answered Predict; its log record, with the request id,
        when `logger` is given (the request was sampled)."""
        if version is None:
            return
        self.metrics.observe_predictions(model, version, request, response)
        if logger is not None:
            logger.log("Predict", request, response, model, version,
                       response.model_spec.signature_name, request_id)

    async def drain(self, timeout: float) -> None:
        """Waits for shadow copies still out (shutdown, tests)."""
        if self._shadow_tasks:
            await asyncio.wait(set(self._shadow_tasks), timeout=timeout)


def request_id_or_new(sent: str | None) -> str:
    """The client's `x-request-id`, or a new one (returned to the caller either way)."""
    return sent if sent else uuid.uuid4().hex


def undecoded(body: bytes) -> tuple[None, None]:
    """For answers whose version comes from the labels (not parsed)."""
    return None, None
