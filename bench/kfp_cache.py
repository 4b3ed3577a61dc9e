"""What re-runs on open-source KFP when a run finds no new data: the compiled pipeline, twice on
the same spans, through KFP's driver and launcher as tests/containers/oss_launcher.py plays them
(every task in the pipeline image under podman, artifacts in an S3 API on loopback, KFP's cache
key). kfp.local cannot show this: it caches nothing (kfp 2.13's kfp/local has no cache).

Two files: the one `ctpipe compile` writes (snapshot steps ahead of the steps that read outside
state, pipeline/kubeflow/snapshots.py), and the same file as compiled before them (those steps
uncached, no snapshot steps). Printed: per file and run, the tasks that ran, the cache hits and
the wall time.

    python -m bench.kfp_cache [--work build/bench-kfp-cache] [--out build/bench/kfp_cache.json]
"""
from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from bench import arguments, machine, report
from bench.incremental import arrive
from containers import podman
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.kubeflow.pipeline_file import read_pipeline_file
from ctpipe.pipeline.kubeflow.runner import compile_pipeline, kubeflow_config
from ctpipe.pipeline.pipeline import OUTSIDE_STATE_STEPS
from tests.containers import oss_launcher

BUCKET = "bench-kfp"
SETTINGS = {"window": 4}


def without_snapshot_steps(spec: dict[str, Any]) -> dict[str, Any]:
    """The file as compiled before the snapshot steps: they are gone, and the steps reading
    outside state are not cached."""
    spec = copy.deepcopy(spec)
    tasks = spec["root"]["dag"]["tasks"]
    for step in OUTSIDE_STATE_STEPS:
        snapshot = f"{step}Snapshot"
        del tasks[snapshot]
        tasks[step]["inputs"]["parameters"].pop("snapshot")
        tasks[step]["dependentTasks"].remove(snapshot)
        tasks[step]["cachingOptions"] = {"enableCache": False}
    return spec


def _runs(name: str, root: str, spec: dict[str, Any], platform: dict[str, Any], spans: Path,
          work: Path, image: str, s3: dict[str, Any]) -> dict[str, float]:
    bucket = root.split("/")[2]
    cluster = oss_launcher.standalone_cluster(work, image, s3["client"], bucket)
    arrive(spans, cluster.claims["taxi-data"], 4)
    results = {}
    for run in ("first", "no_new_data"):
        start = time.perf_counter()
        tasks = oss_launcher.PipelineRun(cluster, spec, platform, root).run()
        seconds = time.perf_counter() - start
        ran = sorted(task.name for task in tasks.values() if not task.cached)
        print(f"{name}, {run} run: {len(ran)} of {len(tasks)} tasks ran ({', '.join(ran)}), "
              f"{len(tasks) - len(ran)} cache hits, {seconds:.1f} s")
        results[f"{name}_{run}_tasks_run"] = len(ran)
        results[f"{name}_{run}_cache_hits"] = len(tasks) - len(ran)
        results[f"{name}_{run}_wall_s"] = round(seconds, 1)
    return results


def bench_kfp_cache(work: Path) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    spans = work / "spans"
    data.prepare(spans)
    image = podman.image_name()
    podman.build_image(image)
    results: dict[str, float] = {}
    with oss_launcher.s3_api() as s3:
        settings = work / "kubeflow.yaml"
        settings.write_text(yaml.safe_dump(
            {**SETTINGS, **oss_launcher.standalone_settings(s3["endpoint"])}))
        # A bucket each: the pipeline root is part of the compile (span index, checkpoints).
        for name in ("snapshots", "before"):
            root = f"minio://{BUCKET}-{name}/v2/artifacts"
            package = work / f"{name}.yaml"
            compile_pipeline(kubeflow_config(settings, root), image, package)
            spec, platform = read_pipeline_file(package)
            if name == "before":
                spec = without_snapshot_steps(spec)
            results.update(_runs(name, root, spec, platform, spans, work / name, image, s3))
    return results


def main() -> None:
    args = arguments(__doc__, "build/bench-kfp-cache", "kfp_cache").parse_args()
    started = machine()
    report("kfp_cache", bench_kfp_cache(Path(args.work).resolve()), args.out, started)


if __name__ == "__main__":
    main()
