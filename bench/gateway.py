"""Gateway benchmark: what `ctpipe gateway` adds over calling `ctpipe serve` directly, against
the floor of any extra loopback hop, and throughput through both.

Each of the three runs in its own process: the echo server (`bench.echo_server`, the floor),
`ctpipe serve` (the backend) and `ctpipe gateway` in front of it (prediction log at 5 %
sampling and metrics on, as deployed). Batch-1 latency comes from the blocking client, sending
the same Predict request bytes to all three in interleaved rounds (so a busy moment of this
shared machine hits all of them); throughput from 8 grpc.aio clients.

    python -m bench.gateway [--out build/bench/gateway.json]
"""
from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc

from bench import RESULTS_DIR, machine, report
from bench.serving import MODEL_NAME, _examples, _push, _request, _throughput, _untrained_model
from ctpipe.program import program
from ctpipe.serving.client import version_labels
from ctpipe.serving.server.process import ServerProcess

ROUNDS = 6
CALLS_PER_ROUND = 400
THROUGHPUT_SECONDS = 5.0


def _echo_server() -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "bench.echo_server"],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    ready = re.match(r"Serving on 127\.0\.0\.1:(\d+)", line)
    if not ready:
        process.kill()
        raise SystemExit(f"echo server did not start: {line!r}")
    return process, int(ready.group(1))


def _caller(port: int, body: bytes) -> Callable[[], bytes]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    return lambda: call(body, timeout=30)


def _interleaved_latency_ms(callers: dict[str, Callable[[], bytes]]) -> dict[str, tuple]:
    """p50/p99 (ms) per caller over ROUNDS rounds of CALLS_PER_ROUND calls, in turn."""
    timings: dict[str, list[float]] = {name: [] for name in callers}
    for call in callers.values():
        for _ in range(50):
            call()
    for _ in range(ROUNDS):
        for name, call in callers.items():
            for _ in range(CALLS_PER_ROUND):
                started = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - started)
    result = {}
    for name, values in timings.items():
        ordered = sorted(values)
        result[name] = (round(statistics.median(ordered) * 1e3, 3),
                        round(ordered[int(len(ordered) * 0.99) - 1] * 1e3, 3))
    return result


@contextlib.contextmanager
def _backend_and_gateway(work: Path, config: Path, *backend_flags: str) -> Iterator[tuple]:
    """`ctpipe serve` and `ctpipe gateway` in front of it, each in its own process; the
    gateway logs 5 % of the requests and exports its metrics, as deployed."""
    with ServerProcess(program("serve"), [f"--model_config_file={config}", *backend_flags],
                       Path(tempfile.mkstemp(prefix="serve-", dir=work)[1])) as backend, \
         ServerProcess(program("gateway"), [f"--backend={backend.target}", f"--model_config_file={config}",
                        f"--prediction_log_dir={work / 'logs'}",
                        "--prediction_log_sampling_rate=0.05"],
                       Path(tempfile.mkstemp(prefix="gateway-", dir=work)[1])) as gateway:
        yield backend, gateway


def bench_gateway(work: Path, model: Path | None = None) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    examples = _examples(300)
    if model is None:
        model = _untrained_model(work / "model", examples)
    base_path = work / "base"
    _push(model, base_path, 1)
    config = work / "models.config"
    version_labels.write_initial_config(config, MODEL_NAME, str(base_path), {"stable": 1})
    request = _request(examples[:1])
    body = request.SerializeToString()
    batching = work / "batching.config"
    batching.write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 500 } "
                        "max_enqueued_batches { value: 100 } num_batch_threads { value: 2 }")
    echo, echo_port = _echo_server()
    try:
        with _backend_and_gateway(work, config) as (backend, gateway):
            latency = _interleaved_latency_ms({
                "floor": _caller(echo_port, body), "direct": _caller(backend.port, body),
                "gateway": _caller(gateway.port, body)})
    finally:
        echo.kill()
        echo.wait()
    # Throughput as deployed for many clients: server-side batching on.
    with _backend_and_gateway(work, config, "--enable_batching",
                              f"--batching_parameters_file={batching}") as (backend, gateway):
        direct_rate, _ = _throughput(backend.port, request, 8, THROUGHPUT_SECONDS)
        gateway_rate, failed = _throughput(gateway.port, request, 8, THROUGHPUT_SECONDS)
    floor, direct, through = latency["floor"], latency["direct"], latency["gateway"]
    return {
        "gateway_request_bytes": len(body),
        "gateway_floor_echo_p50_ms": floor[0], "gateway_floor_echo_p99_ms": floor[1],
        "gateway_direct_p50_ms": direct[0], "gateway_direct_p99_ms": direct[1],
        "gateway_p50_ms": through[0], "gateway_p99_ms": through[1],
        "gateway_overhead_p50_ms": round(through[0] - direct[0], 3),
        "gateway_overhead_p99_ms": round(through[1] - direct[1], 3),
        "gateway_overhead_p50_over_floor_ms": round(through[0] - direct[0] - floor[0], 3),
        "gateway_overhead_p99_over_floor_ms": round(through[1] - direct[1] - floor[1], 3),
        "gateway_direct_8clients_batching_req_per_s": round(direct_rate),
        "gateway_8clients_batching_req_per_s": round(gateway_rate),
        "gateway_8clients_failed_count": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="SavedModel to serve (default: our model, untrained)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "gateway.json"))
    parser.add_argument("--work", default="build/bench-gateway", help="scratch folder (recreated)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    started = machine()
    report("gateway", bench_gateway(work, Path(args.model).resolve() if args.model else None),
           args.out, started)


if __name__ == "__main__":
    main()
