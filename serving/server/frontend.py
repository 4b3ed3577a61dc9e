"""What the gRPC and REST front ends share: running a request through `InferenceService` while
counting it in the metrics and sampling it into the prediction log, model status, and config
reloads (which also set up the prediction logs the new config asks for)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2
from tensorflow_serving.config import model_server_config_pb2

from ctpipe.serving.prediction_log import PredictionLogger
from ctpipe.serving.server.errors import RequestError, invalid
from ctpipe.serving.server.flags import ServerOptions
from ctpipe.serving.server.inference import InferenceService
from ctpipe.serving.server.lifecycle import ModelManager
from ctpipe.serving.server.metrics import ServerMetrics
from ctpipe.serving.server.servable import Servable

log = logging.getLogger(__name__)


class Frontend:
    def __init__(self, options: ServerOptions, manager: ModelManager, service: InferenceService,
                 metrics: ServerMetrics):
        self.options, self.manager, self.service, self.metrics = options, manager, service, metrics
        self.loggers: dict[str, PredictionLogger] = {}
        self._reload_lock = threading.Lock()

    def call(self, api: str, entrypoint: str, model_name: str, method: Callable, request: Any,
             deadline: float | None) -> Any:
        """Runs one inference call; records metrics and the sampled prediction log."""
        started = time.perf_counter()
        try:
            servable, response = method(request, deadline)
        except Exception as err:  # noqa: BLE001 - recorded, then re-raised as a RequestError
            raise self.failed(api, entrypoint, model_name, started, err) from None
        self.succeeded(api, entrypoint, servable, started, request, response)
        return response

    def failed(self, api: str, entrypoint: str, model_name: str, started: float,
               err: Exception) -> RequestError:
        """Counts a failed call; anything but a RequestError is a bug reported as INTERNAL
        (a bad request must never take the server down)."""
        if not isinstance(err, RequestError):
            log.error("%s failed unexpectedly", api, exc_info=err)
            err = RequestError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
        self.metrics.observe_request(model_name, api, entrypoint, err.code.name,
                                     time.perf_counter() - started)
        return err

    def succeeded(self, api: str, entrypoint: str, servable: Servable, started: float,
                  request: Any, response: Any) -> None:
        self.metrics.observe_request(servable.model_name, api, entrypoint, "OK",
                                     time.perf_counter() - started)
        if api == "Predict":  # our models answer Predict only (docs/monitoring.md)
            self.metrics.observe_predictions(servable.model_name, servable.version, request,
                                             response)
        logger = self.loggers.get(servable.model_name)
        if logger is not None:
            logger.maybe_log(api, request, response, servable.model_name, servable.version,
                             _signature_of(response))

    def status(self, request: get_model_status_pb2.GetModelStatusRequest
               ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        if not spec.name:
            raise invalid("ModelSpec has no name specified.")
        version = None
        if spec.WhichOneof("version_choice") == "version":
            version = spec.version.value
        elif spec.WhichOneof("version_choice") == "version_label":
            version = self.manager.resolve(spec).version
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.extend(self.manager.status(spec.name, version))
        return response

    def apply_config(self, server_config: model_server_config_pb2.ModelServerConfig,
                     startup: bool = False) -> None:
        """Applies a new model server config. One that sets neither `model_config_list` nor
        `custom_model_config` changes nothing, as in TF Serving."""
        if server_config.WhichOneof("config") is None:
            log.info("empty model server config: no action")
            return
        with self._reload_lock:
            self.manager.apply_config(server_config, startup=startup)
            self._refresh_loggers(server_config)

    def _refresh_loggers(self, server_config: model_server_config_pb2.ModelServerConfig) -> None:
        wanted = {c.name: c.logging_config for c in server_config.model_config_list.config
                  if c.HasField("logging_config")}
        for name in list(self.loggers):
            logger = self.loggers[name]
            config = wanted.get(name)
            if (config is None or logger.prefix != config.log_collector_config.filename_prefix
                    or logger.sampling_rate != config.sampling_config.sampling_rate):
                self.loggers.pop(name).close()
        for name, config in wanted.items():
            if name not in self.loggers:
                try:
                    self.loggers[name] = PredictionLogger(
                        config, max_bytes=self.options.prediction_log_file_max_bytes,
                        max_files=self.options.prediction_log_max_files)
                except ValueError as err:
                    raise invalid(f"logging_config of model {name}: {err}") from None
                log.info("prediction log of %s: %s-*.tfrecord, sampling rate %s", name,
                         self.loggers[name].prefix, self.loggers[name].sampling_rate)

    def reload(self, request: model_management_pb2.ReloadConfigRequest
               ) -> model_management_pb2.ReloadConfigResponse:
        self.apply_config(request.config)
        return model_management_pb2.ReloadConfigResponse()

    def close(self) -> None:
        for logger in self.loggers.values():
            logger.close()


def _signature_of(response: Any) -> str:
    spec = getattr(response, "model_spec", None)
    if spec is None:  # MultiInference: one spec per result
        return ",".join(r.model_spec.signature_name for r in response.results)
    return spec.signature_name
