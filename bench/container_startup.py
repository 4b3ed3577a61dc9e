"""Per-task start-up cost in the pipeline image: what every pipeline step (every pod on a cluster)
pays before its executor starts working.

Each figure is the wall time from asking the engine for a container (the Docker API, as kfp.local's
DockerRunner does, served by podman) to the moment the task's imports are done, measured with the
host's clock (containers share it); median of `--repeats` runs, taken round-robin after one
untimed warm-up:

- `python -c pass` in the image: container and interpreter start;
- `import tensorflow`: the floor of any step that runs TensorFlow;
- TFX's v2 container entrypoint (`kubeflow_v2_run_executor`), which every TFX step runs;
- `tfx.v1`, the public API, against the direct modules the project imports;
- every step of the real pipeline: `ctpipe compile` writes the pipeline file for the image, and
  each step's container imports its command's module and its executor class's module.

Also printed: the number of modules each case loads (it tells real differences from a busy
machine's noise) and where the entrypoint's import time goes (`python -X importtime`, self time
summed by top-level package).

    python -m bench.container_startup [--repeats 3] [--out build/bench/container_startup.json]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from bench import RESULTS_DIR, machine, report
from containers import podman

ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
# Settings `ctpipe compile` requires; the steps' start-up does not depend on them.
COMPILE_SETTINGS = {"data_root": "gs://bench/spans", "serving_root": "gs://bench/serving"}
HEAVY = ["tensorflow", "tensorflow_model_analysis", "apache_beam", "tensorflow_data_validation"]

# Prints the wall clock once the modules in argv are imported, how many modules that loaded, and
# which heavy packages came in (the module count tells real differences from a busy machine's noise).
PROBE = ("import importlib, json, sys, time\n"
         "for name in sys.argv[1:]:\n"
         "    importlib.import_module(name)\n"
         "ready = time.time()\n"
         f"print(json.dumps({{'ready': ready, 'modules': len(sys.modules), 'loaded': "
         f"[p for p in {HEAVY!r} if p in sys.modules]}}))\n")


LABEL = "ctpipe.bench"


def _run(client, image: str, command: list[str]) -> tuple[float, str]:
    """(seconds from the API call to the end of the container, its stdout)."""
    start = time.time()
    output = client.containers.run(image, command, remove=True, stderr=False,
                                   network_mode="none", labels={LABEL: str(os.getpid())})
    return time.time() - start, output.decode()


def _ready_after(client, image: str, modules: list[str]) -> dict:
    """Seconds to `ready` (imports done) and to the container's end, and what was loaded."""
    start = time.time()
    total, output = _run(client, image, ["python", "-c", PROBE, *modules])
    probe = json.loads(output.strip().splitlines()[-1])
    return {"ready": probe["ready"] - start, "total": total, "modules": probe["modules"],
            "loaded": probe["loaded"]}


def _import_time_by_package(client, image: str, top: int = 6) -> dict[str, float]:
    """Self import time of the entrypoint's import, summed by top-level package (seconds)."""
    container = client.containers.run(image, ["python", "-X", "importtime", "-c",
                                              f"import {ENTRYPOINT}"],
                                      detach=True, network_mode="none",
                                      labels={LABEL: str(os.getpid())})
    try:
        container.wait()
        log = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    by_package: collections.Counter = collections.Counter()
    for line in log.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = (part.strip() for part in line[len("import time:"):].split("|"))
            by_package[name.split(".")[0]] += int(self_us) / 1e6
    return {name: round(seconds, 2) for name, seconds in by_package.most_common(top)}


def pipeline_steps(image: str, work: Path) -> dict[str, list[str]]:
    """Step -> the modules its container imports before the executor works, read from the
    pipeline file `ctpipe compile` writes for `image`: the command's module (`python -m X`) and
    the module of `--executor_class_path`."""
    config, output = work / "compile-config.json", work / "pipeline.json"
    config.write_text(json.dumps(COMPILE_SETTINGS))  # YAML reads JSON
    result = subprocess.run([sys.executable, "-m", "ctpipe.cli", "compile", "--image", image,
                             "--pipeline-root", "gs://bench/root", "--config", str(config),
                             "--output", str(output)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise SystemExit(f"ctpipe compile failed:\n{result.stdout[-3000:]}")
    document = json.loads(output.read_text())
    spec = document.get("pipelineSpec", document)
    tasks = spec["root"]["dag"]["tasks"]
    steps = {}
    for label, executor in sorted(spec["deploymentSpec"]["executors"].items()):
        if "container" not in executor:
            continue
        step = label.removesuffix("_executor")
        command = executor["container"].get("command", [])
        args = executor["container"].get("args", [])
        modules = [command[command.index("-m") + 1]] if "-m" in command else []
        if "--executor_class_path" in args:
            modules.append(args[args.index("--executor_class_path") + 1].rsplit(".", 1)[0])
        # The Trainer imports its run_fn (a dotted path parameter) before it trains.
        run_fn = (tasks.get(step, {}).get("inputs", {}).get("parameters", {}).get("run_fn", {})
                  .get("runtimeValue", {}).get("constant"))
        if run_fn:
            modules.append(run_fn.rsplit(".", 1)[0])
        steps[step] = modules
    return steps


def bench_container_startup(work: Path, repeats: int = 3) -> dict[str, float]:
    """Figures (seconds, module counts); builds the image first (`make image`, seconds when
    unchanged)."""
    image = podman.image_name()
    podman.build_image(image)
    cases = {
        "python_pass": [],
        "tensorflow": ["tensorflow"],
        "tfx_v2_entrypoint": [ENTRYPOINT],
        "tfx_v1": ["tfx.v1"],
        **{f"step_{step}": modules for step, modules in pipeline_steps(image, work).items()},
    }
    results: dict[str, float] = {}
    with podman.docker_api(work / "api.sock") as address:
        client = docker.DockerClient(base_url=address, timeout=600)
        try:
            _ready_after(client, image, [ENTRYPOINT])  # warm-up: image files into the page cache
            # Round-robin over the cases, so that a change in the machine's load (other work
            # on the same cores) spreads over all of them instead of skewing one.
            all_runs: dict[str, list[dict]] = {case: [] for case in cases}
            for _ in range(repeats):
                for case, modules in cases.items():
                    all_runs[case].append(_ready_after(client, image, modules))
            for case, runs in all_runs.items():
                results[f"container_startup_{case}_s"] = round(
                    statistics.median(run["ready"] for run in runs), 2)
                results[f"container_startup_{case}_modules_count"] = runs[0]["modules"]
                print(f"{case} (imports {', '.join(cases[case]) or 'nothing'}): ready after {[round(run['ready'], 2) for run in runs]} s, ended "
                      f"after {[round(run['total'], 2) for run in runs]} s; "
                      f"{runs[0]['modules']} modules; heavy: {', '.join(runs[0]['loaded']) or '-'}",
                      flush=True)
                if case == "tfx_v2_entrypoint":
                    results["container_startup_tfx_v2_entrypoint_to_exit_s"] = round(
                        statistics.median(run["total"] for run in runs), 2)
            for package, seconds in _import_time_by_package(client, image).items():
                results[f"container_entrypoint_import_self_{package}_s"] = seconds
        finally:
            podman.remove_containers(podman.containers_where(f"label={LABEL}={os.getpid()}"))
            client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS_DIR / "container_startup.json"))
    args = parser.parse_args()
    started = machine()
    with tempfile.TemporaryDirectory(prefix="ctpipe-bench-") as work:
        results = bench_container_startup(Path(work), args.repeats)
    report("container_startup", results, args.out, started)


if __name__ == "__main__":
    main()
