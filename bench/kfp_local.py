"""The compiled pipeline under Kubeflow's local orchestrator against LocalDagRunner, same data.

Both sides get the bundled trips' spans 1-4 (a first run), then span 5 arrives (a second run),
with the same settings file. LocalDagRunner runs `ctpipe run` in a fresh interpreter. The
Kubeflow side is the file `ctpipe compile` writes, run by `kfp.local` with DockerRunner on
podman: one container per task in the project image, one task at a time, nothing cached (as on
a cluster, where each task is a pod). The difference is what a task's container pays: start-up,
imports and the entrypoint's artifact handling (bench/container_startup.py itemises it).

    python -m bench.kfp_local [--work build/bench-kfp-local] [--out build/bench/kfp_local.json]
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import arguments, machine, report
from bench.incremental import arrive
from containers import kfp_local
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config

SETTINGS = {"window": 4}
# Spans 1-4 arrive for the first run, span 5 for the second.
RUNS = (("first", 4), ("new_span", 5))


def _local_runs(spans: Path, work: Path) -> dict[str, float]:
    data, workspace, settings = work / "data", work / "ws", work / "settings.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text(yaml.safe_dump(SETTINGS))
    ctpipe = str(Path(sys.executable).parent / "ctpipe")
    seconds = {}
    for name, newest in RUNS:
        arrive(spans, data, newest)
        log = work / f"{name}.log"
        start = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run([ctpipe, "run", "--data", str(data), "--workspace",
                                   str(workspace), "--config", str(settings)],
                                  stdout=out, stderr=subprocess.STDOUT)
        seconds[name] = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"ctpipe run failed ({done.returncode}); see {log}")
    return seconds


def _kfp_local_runs(spans: Path, work: Path) -> dict[str, float]:
    seconds = {}
    with kfp_local.docker_session(work / "root", work / "api.sock") as kfp:
        # kfp.local mounts only the pipeline root: the data and serving folders live under it.
        data = kfp.pipeline_root / "data"
        settings = kfp.pipeline_root / "kubeflow.yaml"
        settings.write_text(yaml.safe_dump({**SETTINGS, "data_root": str(data),
                                            "serving_root": str(kfp.pipeline_root / "serving")}))
        package = kfp.pipeline_root / "pipeline.json"
        compile_pipeline(kubeflow_config(settings, str(kfp.pipeline_root)), kfp.image, package)
        for name, newest in RUNS:
            arrive(spans, data, newest)
            start = time.perf_counter()
            kfp.run_pipeline(package)
            seconds[name] = time.perf_counter() - start
    return seconds


def bench_kfp_local(work: Path) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    spans = work / "spans"
    data.prepare(spans)
    local = _local_runs(spans, work / "local")
    kubeflow = _kfp_local_runs(spans, work / "kfp")
    results: dict[str, float] = {}
    for name in ("first", "new_span"):
        results[f"local_dag_runner_{name}_run_wall_s"] = round(local[name], 1)
        results[f"kfp_local_containers_{name}_run_wall_s"] = round(kubeflow[name], 1)
        results[f"kfp_local_to_local_{name}_run_ratio"] = round(kubeflow[name] / local[name], 2)
    return results


def main() -> None:
    args = arguments(__doc__, "build/bench-kfp-local", "kfp_local").parse_args()
    started = machine()
    report("kfp_local", bench_kfp_local(Path(args.work).resolve()), args.out, started)


if __name__ == "__main__":
    main()
