"""Serving benchmark: `ctpipe serve` over gRPC against the in-process `serving_default` floor.

The server runs in its own process (`ctpipe serve`, as deployed), so client and server do not
share an interpreter lock; latency is measured with the blocking client, throughput with
grpc.aio clients. Figures: batch-1 latency p50/p99, requests/s with 1 and 8 concurrent clients
(without and with server-side batching), rows/s with batches of 256, and the time from a
finished push of a new version until it is served, with the number of failed requests meanwhile.

    python -m bench.serving [--model SAVED_MODEL_DIR] [--out build/bench/serving.json] [--latency-only]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import grpc
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench import RESULTS_DIR, machine, report
from ctpipe.dataprep import spans as data
from ctpipe.models.export import export_serving_model
from ctpipe.models.inputs import parse_examples
from ctpipe.models.model import HParams, build_model, fit_feature_stats
from ctpipe.program import program
from ctpipe.serving.client.examples import row_to_example
from ctpipe.serving.server.process import ServerProcess

MODEL_NAME = "big_tipper"
LATENCY_CALLS = 2000
THROUGHPUT_SECONDS = 5.0


def _examples(count: int) -> list[bytes]:
    with data.bundled_source().open(newline="") as handle:
        rows = [row for _, row in zip(range(count), csv.DictReader(handle))]
    return [row_to_example(row) for row in rows]


def _untrained_model(export_dir: Path, examples: list[bytes]) -> Path:
    """Timing does not depend on the weights: our model, fitted preprocessing, no training."""
    columns = {k: v.numpy() for k, v in parse_examples(tf.constant(examples), False).items()}
    export_serving_model(build_model(fit_feature_stats(columns, HParams()), HParams()),
                         str(export_dir))
    return export_dir


def _push(model: Path, base_path: Path, version: int) -> None:
    """As the TFX Pusher: everything first, saved_model.pb last."""
    target = base_path / str(version)
    shutil.copytree(model, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    shutil.copy2(model / "saved_model.pb", target / "saved_model.pb")


def _latency_ms(call: Callable[[], object]) -> tuple[float, float]:
    """p50 and p99 of LATENCY_CALLS calls, after 50 warm-up calls."""
    for _ in range(50):
        call()
    timings = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    ordered = sorted(timings)
    return (round(statistics.median(ordered) * 1e3, 3),
            round(ordered[int(len(ordered) * 0.99) - 1] * 1e3, 3))


def _in_process(model: Path, one: bytes, batch: list[bytes] | None) -> dict[str, float]:
    """The floor: the SavedModel's signature called in this process (rows/s unless batch is
    None)."""
    signature = tf.saved_model.load(str(model)).signatures["serving_default"]
    p50, p99 = _latency_ms(lambda: signature(examples=tf.constant([one])))
    results = {"serving_inprocess_batch1_p50_ms": p50, "serving_inprocess_batch1_p99_ms": p99}
    if batch is not None:
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < THROUGHPUT_SECONDS:
            signature(examples=tf.constant(batch))
            rows += len(batch)
        results["serving_inprocess_batch256_rows_per_s"] = round(
            rows / (time.perf_counter() - started))
    return results


def _server(work: Path, *flags: str) -> ServerProcess:
    """`ctpipe serve` in its own process (as deployed); output in work/serve-*.log."""
    handle, log_path = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=work)
    os.close(handle)
    return ServerProcess(program("serve"), flags, Path(log_path))


def _stub(port: int):
    return prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{port}"))


def _request(examples: list[bytes]):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs["examples"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=examples,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(examples))])))
    return request


def _throughput(port: int, request, clients: int, seconds: float = THROUGHPUT_SECONDS
                ) -> tuple[float, int]:
    """(requests per second, failed requests) with `clients` concurrent callers, each sending
    its next request when the previous one is answered (grpc.aio: one client thread, so the
    client's own interpreter lock does not throttle the figure)."""
    async def run() -> tuple[float, int]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            answered, failed = [0], [0]
            started = time.perf_counter()
            end = started + seconds

            async def client() -> None:
                while time.perf_counter() < end:
                    try:
                        await stub.Predict(request, timeout=30)
                        answered[0] += 1
                    except grpc.RpcError:
                        failed[0] += 1

            await asyncio.gather(*(client() for _ in range(clients)))
            return answered[0] / (time.perf_counter() - started), failed[0]

    return asyncio.run(run())


def _over_grpc(port: int, one: bytes, batch: list[bytes] | None) -> dict[str, float]:
    """Batch-1 latency with the blocking client; throughput figures unless batch is None."""
    stub, single = _stub(port), _request([one])
    p50, p99 = _latency_ms(lambda: stub.Predict(single, timeout=30))
    results = {"serving_grpc_batch1_p50_ms": p50, "serving_grpc_batch1_p99_ms": p99}
    if batch is None:
        return results
    one_client, _ = _throughput(port, single, 1)
    eight_clients, _ = _throughput(port, single, 8)
    batches_per_s, _ = _throughput(port, _request(batch), 2)
    return {**results, "serving_grpc_1client_req_per_s": round(one_client),
            "serving_grpc_8clients_req_per_s": round(eight_clients),
            "serving_grpc_batch256_rows_per_s": round(batches_per_s * len(batch))}


def _swap(model: Path, base_path: Path, one: bytes) -> dict[str, float]:
    """Pushes version 2 while 4 clients send requests; time until version 2 answers."""
    server = _server(base_path.parent, f"--model_name={MODEL_NAME}",
                     f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=1")
    stub, request = _stub(server.port), _request([one])
    failures, first_new, stop = [0], [None], threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                version = stub.Predict(request, timeout=30).model_spec.version.value
                if version == 2 and first_new[0] is None:
                    first_new[0] = time.perf_counter()
            except grpc.RpcError:
                failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    _push(model, base_path, 2)
    pushed = time.perf_counter()
    deadline = pushed + 60
    while first_new[0] is None and time.perf_counter() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    server.stop()
    swap = round(first_new[0] - pushed, 2) if first_new[0] else float("nan")
    return {"serving_swap_to_new_version_s": swap, "serving_swap_failed_requests_count": failures[0]}


def bench_serving(work: Path, model: Path | None = None,
                  latency_only: bool = False) -> dict[str, float]:
    """Every figure; with `latency_only` just the batch-1 latencies (in-process and gRPC)."""
    work.mkdir(parents=True, exist_ok=True)
    examples = _examples(2000)
    if model is None:
        model = _untrained_model(work / "model", examples)
    one, batch = examples[0], None if latency_only else examples[:256]
    results = _in_process(model, one, batch)

    base_path = work / "base"
    _push(model, base_path, 1)
    with _server(work, f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}") as server:
        results.update(_over_grpc(server.port, one, batch))
    results["serving_grpc_overhead_p50_ms"] = round(
        results["serving_grpc_batch1_p50_ms"] - results["serving_inprocess_batch1_p50_ms"], 3)
    if latency_only:
        return results

    batching = work / "batching.config"
    batching.write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 500 } "
                        "max_enqueued_batches { value: 100 } num_batch_threads { value: 2 }")
    with _server(work, f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}",
                 "--enable_batching", f"--batching_parameters_file={batching}") as server:
        rate, _ = _throughput(server.port, _request([one]), 8)
        results["serving_grpc_8clients_batching_req_per_s"] = round(rate)

    swap_base = work / "swap"
    _push(model, swap_base, 1)
    results.update(_swap(model, swap_base, one))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="SavedModel to serve (default: our model, untrained)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "serving.json"))
    parser.add_argument("--work", default="build/bench-serving", help="scratch folder (recreated)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the batch-1 latencies, in-process and over gRPC (issue #11)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    started = machine()
    results = bench_serving(work, Path(args.model).resolve() if args.model else None,
                            args.latency_only)
    report("serving", results, args.out, started)


if __name__ == "__main__":
    main()
