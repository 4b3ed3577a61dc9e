"""Per-task start-up cost in the pipeline image: what every pipeline step (every pod on a cluster)
pays before its executor starts working.

Each figure is the wall time from asking the engine for a container (the Docker API, as kfp.local's
DockerRunner does, served by podman) to the moment the task's imports are done, measured with the
host's clock (containers share it); median of `--repeats` runs after one untimed warm-up:

- `python -c pass` in the image: container and interpreter start;
- `import tensorflow`: the floor of any step that runs TensorFlow;
- TFX's v2 container entrypoint (`kubeflow_v2_run_executor`), the command of every TFX step;
- the entrypoint's own imports except `tfx.components.evaluator.executor`, which it imports only
  to recognise the Evaluator (a thin entrypoint of ours could skip it);
- `tfx.v1`, the public API, against the direct modules the project imports;
- the entrypoint plus each of the project's executor / run_fn modules.

Also printed: where the entrypoint's import time goes (`python -X importtime`, self time summed by
top-level package).

    python -m bench.container_startup [--repeats 3] [--out container-startup.json]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench import report

ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
# kubeflow_v2_run_executor's imports (tfx 1.16.0) without tfx.components.evaluator.executor.
ENTRYPOINT_WITHOUT_EVALUATOR = [
    "absl.app", "absl.flags", "kfp.pipeline_spec.pipeline_spec_pb2",
    "tfx.dsl.components.base.base_beam_executor", "tfx.dsl.components.base.base_executor",
    "tfx.dsl.io.fileio", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_entrypoint_utils",
    "tfx.orchestration.portable.outputs_utils", "tfx.types.artifact_utils",
    "tfx.types.standard_artifacts", "tfx.types.standard_component_specs",
    "tfx.types.value_artifact", "tfx.utils.import_utils",
]
PROJECT_MODULES = ["components.window_example_gen", "components.validation_gate",
                   "components.infra_validation", "models.trainer"]
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


def bench_container_startup(work: Path, repeats: int = 3) -> dict[str, float]:
    """Figures (seconds); builds the image first (`make image`, seconds when unchanged)."""
    import docker

    from containers import podman

    image = podman.image_name()
    podman.build_image(image)
    cases = {
        "python_pass": [],
        "tensorflow": ["tensorflow"],
        "tfx_v2_entrypoint": [ENTRYPOINT],
        "tfx_v2_entrypoint_without_evaluator": ENTRYPOINT_WITHOUT_EVALUATOR,
        "tfx_v1": ["tfx.v1"],
        **{f"entrypoint_and_{name.replace('.', '_')}": [ENTRYPOINT, name]
           for name in PROJECT_MODULES},
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
                print(f"{case}: ready after {[round(run['ready'], 2) for run in runs]} s, ended "
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
    parser.add_argument("--out", default="container-startup.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctpipe-bench-") as work:
        results = bench_container_startup(Path(work), args.repeats)
    report(results, args.out)


if __name__ == "__main__":
    main()
