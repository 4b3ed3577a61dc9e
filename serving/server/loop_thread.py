"""An asyncio event loop running on its own daemon thread.

grpc.aio and aiohttp serve from an event loop, while the server's callers (the CLI, infra
validation, tests) are synchronous and keep their own thread: each front end gets a loop here
and its caller drives it with `run(coroutine)`.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Runs `coroutine` on the loop and waits for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        """Stops the loop and waits for its thread (at most 5 s)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
