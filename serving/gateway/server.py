"""`ctpipe gateway`: one asyncio loop running the gRPC and REST fronts, the model config
poller and the prediction-log writers.

    from ctpipe.serving.gateway.server import GatewayOptions, start
    handle = start(GatewayOptions(backend="127.0.0.1:9500", model_config_file="models.config",
                                  port=0, rest_api_port=-1))
    handle.port, handle.rest_port; handle.stop()

`start` runs the loop on a thread (tests, embedding); `serve` runs it in the calling thread
until SIGINT/SIGTERM and prints `Serving on HOST:PORT (REST on port N)` once both ports are
open, as `ctpipe serve` does (so `ctpipe.serving.server.process.ServerProcess` can start either).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
from pathlib import Path

from aiohttp import web

from ctpipe.serving.client import protos
from ctpipe.serving.gateway.forwarding import Forwarder, GatewayMetrics
from ctpipe.serving.gateway.grpc_front import GrpcFront
from ctpipe.serving.gateway.options import GatewayOptions
from ctpipe.serving.gateway.rest_front import RestFront
from ctpipe.serving.gateway.routing import Router
from ctpipe.serving.prediction_log import PredictionLogger

log = logging.getLogger(__name__)


def _loggers(options: GatewayOptions, router: Router) -> dict[str, PredictionLogger]:
    """One prediction log per model of the config: `<dir>/<model>-NNNNN.tfrecord`."""
    if not options.prediction_log_dir:
        return {}
    config = protos.ModelServerConfig()
    loggers = {}
    for model in router.models():
        logging_config = config.model_config_list.config.add().logging_config
        logging_config.log_collector_config.type = "tfrecord"
        logging_config.log_collector_config.filename_prefix = str(
            Path(options.prediction_log_dir) / model)
        logging_config.sampling_config.sampling_rate = options.prediction_log_sampling_rate
        loggers[model] = PredictionLogger(logging_config,
                                          max_bytes=options.prediction_log_file_max_bytes,
                                          max_files=options.prediction_log_max_files)
    return loggers


class Gateway:
    """The running gateway inside its event loop."""

    def __init__(self, options: GatewayOptions):
        self.options = options
        self.router = Router(Path(options.model_config_file), options.canary_percent)
        self.metrics = GatewayMetrics()
        self.forwarder = Forwarder(self.router, self.metrics, _loggers(options, self.router),
                                   shadow_max_in_flight=options.shadow_max_in_flight,
                                   shadow_timeout=options.shadow_timeout_seconds)
        self.port = 0
        self.rest_port: int | None = None
        self._stopped = asyncio.Event()

    async def run(self, ready: threading.Event | None = None) -> None:
        options = self.options
        grpc_front = GrpcFront(self.forwarder, options.backend)
        grpc_server, self.port = grpc_front.server(f"{options.bind_address}:{options.port}")
        await grpc_server.start()
        runner = None
        if options.rest_api_port:
            if not options.backend_rest:
                raise ValueError("a REST port needs the backend's REST address (backend_rest)")
            rest = RestFront(self.forwarder, options.backend_rest, options.monitoring_path,
                             options.rest_api_timeout_seconds)
            runner = web.AppRunner(rest.app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, options.bind_address,
                              max(options.rest_api_port, 0)).start()
            self.rest_port = runner.addresses[0][1]
        poller = asyncio.get_running_loop().create_task(self._poll_config())
        if ready is not None:
            ready.set()
        try:
            await self._stopped.wait()
        finally:
            poller.cancel()
            await grpc_server.stop(1.0)
            if runner is not None:
                await runner.cleanup()
            await self.forwarder.drain(options.shadow_timeout_seconds)
            await grpc_front.channel.close()
            for logger in self.forwarder.loggers.values():
                logger.close()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(self.options.model_config_file_poll_wait_seconds)
            try:
                self.router.reload()
            except OSError as err:
                log.error("cannot read the model config file, keeping the labels: %s", err)

    def stop(self) -> None:
        self._stopped.set()


@dataclasses.dataclass
class GatewayHandle:
    """A gateway running on its own thread: `.port`, `.rest_port`, `.gateway`, `.stop()`."""

    gateway: Gateway
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def rest_port(self) -> int | None:
        return self.gateway.rest_port

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.gateway.stop)
        self.thread.join(timeout=15)


def start(options: GatewayOptions, timeout: float = 30.0) -> GatewayHandle:
    """Runs the gateway on a new thread; returns once both ports are open."""
    gateway = Gateway(options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(gateway.run(ready))
        except BaseException as err:  # noqa: BLE001 - handed to the starting thread
            failure.append(err)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="gateway", daemon=True)
    thread.start()
    if not ready.wait(timeout) or failure:
        raise failure[0] if failure else TimeoutError("gateway did not start")
    return GatewayHandle(gateway, loop, thread)


def serve(options: GatewayOptions) -> None:
    """The CLI entry point: runs until SIGINT/SIGTERM."""
    gateway = Gateway(options)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, gateway.stop)
        ready = threading.Event()
        running = loop.create_task(gateway.run(ready))
        while not ready.is_set() and not running.done():
            await asyncio.sleep(0.01)
        if ready.is_set():
            print(f"Serving on {options.bind_address}:{gateway.port}"
                  + (f" (REST on port {gateway.rest_port})" if gateway.rest_port else ""),
                  flush=True)
        await running

    asyncio.run(main())
