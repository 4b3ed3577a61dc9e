"""Serving client figures: start-up cost of the client and `ctpipe predict`, request latency.

    python -m bench.serving_client --model-base-path build/demo/serving/big_tipper

Serves the given base path with `ctpipe serve` on a free loopback port, then measures in fresh
interpreters (import time included) and over bounded request loops. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMPORT_PROBE = ("import time; start = time.perf_counter(); import {module}; "
                "print(time.perf_counter() - start)")


def _import_seconds(module: str, repeats: int) -> float:
    """Median wall time of importing `module` in a fresh interpreter."""
    times = [float(subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(module=module)],
                                  cwd=REPO, capture_output=True, text=True, check=True,
                                  timeout=300).stdout.split()[-1]) for _ in range(repeats)]
    return statistics.median(times)


def _latency_ms(client, examples: list[bytes], requests: int) -> tuple[float, float]:
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        client.predict(examples)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, required=True,
                        help="folder of numbered versions, e.g. WORKSPACE/serving/big_tipper")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from ctpipe.data import bundled_source
    from pipeline.config import PipelineConfig
    from serving.client import PredictionClient, read_rows, rows_to_examples
    from serving.local_server import running_server

    model_name = PipelineConfig().model_name
    rows = read_rows(bundled_source())[:100]
    figures = {
        "client_import_s": _import_seconds("serving.client", args.repeats),
        "predict_protos_plain_import_s": _import_seconds(
            "tensorflow_serving.apis.predict_pb2", args.repeats),
    }
    sample = REPO / "build" / "bench-predict-sample.json"
    sample.parent.mkdir(exist_ok=True)
    sample.write_text(json.dumps(rows[:3]))
    with running_server(model_name, args.model_base_path.resolve()) as server:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ctpipe.cli", "predict", "--server", server.target,
                        "--json", str(sample)], cwd=REPO, check=True, capture_output=True,
                       timeout=120)
        figures["ctpipe_predict_wall_s"] = time.perf_counter() - start
        with PredictionClient(server.target, model_name) as client:
            for batch in (1, 100):
                median, p95 = _latency_ms(client, rows_to_examples(rows[:batch]), args.requests)
                figures[f"predict_batch{batch}_p50_ms"] = median
                figures[f"predict_batch{batch}_p95_ms"] = p95
    print(json.dumps({key: round(value, 3) for key, value in figures.items()}, indent=2))


if __name__ == "__main__":
    main()
