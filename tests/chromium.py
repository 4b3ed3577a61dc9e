"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol, for tests
of the HTML the project writes.

The protocol, rather than `chromium --dump-dom` and its log, because it reports what a test must
see exactly: every console message with its level, uncaught exceptions, messages of the
browser itself (a blocked request, a Content-Security-Policy violation) and every request the
page makes; and it evaluates an expression in the loaded page. It speaks JSON over a
websocket (aiohttp's client, a locked dependency); nothing is downloaded.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0")
PROBLEM_LEVELS = {"error", "warning", "assert"}


@dataclasses.dataclass
class LoadedPage:
    problems: list[str]  # console errors and warnings, exceptions, the browser's own errors
    requests: list[str]  # URLs the page requested, the page itself first
    value: Any  # what the expression evaluated to after the load event


def _require_chromium() -> None:
    if not Path(CHROMIUM).is_file():
        raise AssertionError(f"Chromium not found ({CHROMIUM}): install Debian's `chromium` "
                             "package (`make test` does: scripts/setup-system.sh tests)")


def _debugging_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """Chromium writes the port it chose into the profile folder once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Chromium exited with status {process.returncode} at start")
        lines = marker.read_text().split() if marker.is_file() else []
        if len(lines) >= 2:
            return int(lines[0])
        time.sleep(0.1)
    raise AssertionError(f"Chromium did not open its debugging port within {timeout} s")


def _describe(message: dict[str, Any]) -> str | None:
    """A problem the page reported, as one line; None for anything else."""
    method, params = message.get("method"), message.get("params", {})
    if method == "Runtime.consoleAPICalled" and params["type"] in PROBLEM_LEVELS:
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        return f"console.{params['type']}: {text}"
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"uncaught: {details.get('exception', {}).get('description', details['text'])}"
    if method == "Log.entryAdded" and params["entry"]["level"] in PROBLEM_LEVELS:
        entry = params["entry"]
        return f"browser {entry['level']} ({entry['source']}): {entry['text']}"
    return None


async def _drive(port: int, url: str, expression: str, timeout: float) -> LoadedPage:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
            targets = await answer.json()
        page = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            problems: list[str] = []
            requests: dict[str, str] = {}  # request id -> URL, in the order they were made
            calls = 0

            async def call(method: str, **params: Any) -> dict[str, Any]:
                nonlocal calls
                calls += 1
                sent = calls
                await socket.send_json({"id": sent, "method": method, "params": params})
                return await until(lambda m: m.get("id") == sent)

            async def until(done) -> dict[str, Any]:
                async for frame in socket:
                    message = json.loads(frame.data)
                    problem = _describe(message)
                    if problem:
                        problems.append(problem)
                    params = message.get("params", {})
                    if message.get("method") == "Network.requestWillBeSent":
                        requests[params["requestId"]] = params["request"]["url"]
                    if message.get("method") == "Network.loadingFailed" and not params.get(
                            "canceled"):
                        problems.append(f"request failed: {requests.get(params['requestId'])}: "
                                        f"{params['errorText'] or params.get('blockedReason')}")
                    if done(message):
                        return message
                raise AssertionError("Chromium closed the DevTools connection")

            for domain in ("Runtime", "Log", "Network", "Page"):
                await call(f"{domain}.enable")
            await call("Page.navigate", url=url)
            await asyncio.wait_for(until(lambda m: m.get("method") == "Page.loadEventFired"),
                                   timeout)
            result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            if "exceptionDetails" in result.get("result", {}):
                raise AssertionError(f"evaluating {expression!r} failed: "
                                     f"{result['result']['exceptionDetails']}")
            return LoadedPage(problems, list(requests.values()),
                              result["result"]["result"].get("value"))


def load_page(path: Path, expression: str, timeout: float = 60) -> LoadedPage:
    """Opens `path` in a fresh headless Chromium (new profile, no network services), waits for
    the load event, evaluates `expression` (JSON-able result) and reports what happened."""
    _require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = _debugging_port(Path(profile), process, timeout)
            return asyncio.run(_drive(port, Path(path).resolve().as_uri(), expression, timeout))
        finally:
            os.killpg(process.pid, signal.SIGTERM)  # Chromium and its helper processes
            process.wait(timeout=30)

# What a page drawn by reporting/page/page.js holds, evaluated in the loaded page: every
# <details> is opened first, so that every plot is laid out and its marks have a size.
DRAWN_PLOTS = """(() => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const specs = JSON.parse(document.getElementById("plot-specs").textContent);
  return {
    finished: document.body.dataset.plots === "done",
    specs: Object.keys(specs).length,
    figures: [...document.querySelectorAll("figure.plot")].map((figure) => {
      const svg = figure.querySelector("svg");
      const marks = svg ? [...svg.querySelectorAll(".mark")] : [];
      return {
        id: figure.id, kind: (specs[figure.id] || {}).kind || null,
        drawn: Number(figure.dataset.drawn || 0), error: figure.dataset.error || null,
        title: svg ? (svg.querySelector("text.title") || {}).textContent || "" : "",
        width: svg ? svg.getBoundingClientRect().width : 0,
        visible_marks: marks.filter((m) => { const b = m.getBBox();
                                             return b.width > 0 || b.height > 0; }).length,
        axes: svg ? svg.querySelectorAll("line.axis").length : 0,
        legend: svg ? svg.querySelectorAll("text.legend").length : 0,
      };
    }),
  };
})()"""
