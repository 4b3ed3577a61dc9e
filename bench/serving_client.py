"""Start-up cost of the serving client and of `ctpipe predict` (request latency and throughput
are bench/serving.py's).

    python -m bench.serving_client --model-base-path WORKSPACE/serving/big_tipper

Each figure is measured in fresh interpreters (import time included), median of --repeats.
`ctpipe predict` is timed against `ctpipe serve` on a free loopback port. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ctpipe.dataprep.spans import bundled_source
from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
from ctpipe.program import program
from ctpipe.serving.client.examples import read_rows
from ctpipe.serving.server.process import running_server

REPO = Path(__file__).resolve().parent.parent
IMPORT_PROBE = ("import time; start = time.perf_counter(); import {module}; "
                "print(time.perf_counter() - start)")


def _import_seconds(module: str) -> float:
    """Wall time of importing `module` in a fresh interpreter."""
    answer = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(module=module)], cwd=REPO,
                            capture_output=True, text=True, check=True, timeout=300)
    return float(answer.stdout.split()[-1])


def _command_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, required=True,
                        help="folder of numbered versions, e.g. WORKSPACE/serving/big_tipper")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    def median(measure, *arguments) -> float:
        return round(statistics.median(measure(*arguments) for _ in range(args.repeats)), 3)

    model_name = DEFAULT_MODEL_NAME
    figures = {
        "client_import_s": median(_import_seconds, "ctpipe.serving.client.grpc_client"),
        "predict_protos_plain_import_s": median(_import_seconds,
                                                "tensorflow_serving.apis.predict_pb2"),
    }
    with tempfile.TemporaryDirectory(prefix="bench-serving-client-") as scratch:
        sample = Path(scratch) / "trips.json"
        sample.write_text(json.dumps(read_rows(bundled_source())[:3]))
        with running_server(program("serve"), model_name, args.model_base_path.resolve(),
                            log_dir=Path(scratch)) as server:
            figures["ctpipe_predict_wall_s"] = median(_command_seconds, [
                *program("predict"), "--server", server.target,
                "--model", model_name, "--json", str(sample)])
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
