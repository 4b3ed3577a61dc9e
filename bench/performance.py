"""docs/performance.md, the one page of measured figures: written from the benchmarks' results.

A results file (`build/bench/results.json` from `make bench`, `build/bench/<section>.json` from
one module) holds, per section, when and on which machine its figures were measured. The page
keeps every section's record as data at its end, so merging a new results file replaces only
the sections measured again; the others keep their figures, dates and machines.

    python -m bench.performance [RESULTS.json ...] [--page docs/performance.md]

With no results file, the page is rendered again from its own data (after a change here).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "performance.md"
DATA_START, DATA_END = "<!-- figures (bench/performance.py reads them back)", "-->"


class Section(NamedTuple):
    title: str
    command: str
    what: str


# The page's order. A section a results file names but this table does not know is refused.
SECTIONS = {
    "pipeline": Section(
        "The whole pipeline against TFX's taxi example",
        "`python -m bench` (its first part)",
        "Our full local run on all spans and TFX's own `taxi_pipeline_native_keras.py` "
        "(LocalDagRunner) on the same 90 % of the trips, each in a fresh interpreter with "
        "the same Beam arguments; both pushed models then score the same held-out 10 % "
        "(1,489 trips, chosen by a stable hash of each row)."),
    "scale": Section(
        "Spans of real size",
        "`python -m bench.scale [--part ingest|runs|peer|budget]`",
        "ExampleGen and StatisticsGen on one large span; 16 spans of 500 k trips, a full run "
        "and the run after span 16 arrives, per training policy; the peer at 800 k trips; "
        "training budgets on the replicated window. See [scale.md](scale.md)."),
    "incremental": Section(
        "What a new span costs as the history grows (small spans)",
        "`python -m bench.incremental`",
        "The trips minus the held-out 10 % make 16 quarterly spans, replicated to 64. For each "
        "training policy one workspace grows; the run after span N arrives is timed in process. "
        "\"Full run\" is a fresh workspace's first run on all N spans."),
    "serving": Section(
        "Serving: `ctpipe serve`",
        "`python -m bench.serving [--model DIR] [--latency-only]`",
        "The server in its own process on the pipeline's pushed model; batch-1 latency against "
        "the in-process `serving_default`, throughput, a push served without a restart. See "
        "[serving-server.md](serving-server.md)."),
    "gateway": Section(
        "The gateway in front of the server",
        "`python -m bench.gateway [--model DIR]`",
        "`ctpipe gateway` before `ctpipe serve`, each in its own process; the floor is a "
        "grpc.aio echo server (`bench/echo_server.py`) answering the same Predict request in "
        "the same interleaved rounds. See [rollout.md](rollout.md)."),
    "scoring": Section(
        "Offline scoring: `ctpipe score`",
        "`python -m bench.scoring [--rows N]`",
        "Trips scored in Beam (DirectRunner), CSV in and out, the model in process; the floor "
        "is `serving_default` on ready examples. See [scoring.md](scoring.md)."),
    "monitor": Section(
        "`ctpipe monitor`",
        "`python -m bench.monitor`",
        "`ctpipe serve` logs real batch-1 Predict calls; `monitor()` reads and compares 10 "
        "rotated files of them after start-up. See [monitoring.md](monitoring.md)."),
    "rollout": Section(
        "The rollout analysis replayed",
        "`python -m bench.rollout [--runs 400]`",
        "Replays of one-trip requests, 10 % to the canary, a look every 500 requests: how often "
        "an equal canary is rolled back and how soon worse ones are caught. See "
        "[rollout.md](rollout.md)."),
    "drift_calibrated": Section(
        "Calibrated drift on the real quarters",
        "`python -m bench.drift_calibrated`",
        "The drift check over the 15 real quarter transitions, on the real spans and on spans "
        "replicated to 500,000 trips; planted shifts; no-shift draws. See [drift.md](drift.md)."),
    "trainer": Section(
        "The Trainer",
        "`python -m bench.trainer`",
        "Warm start against a cold start, transfer against scratch on a small quarter, the cost "
        "of checkpoints and TensorBoard logs. See [trainer.md](trainer.md)."),
    "container_startup": Section(
        "Start-up of a pipeline step in the image",
        "`python -m bench.container_startup` (builds the image first)",
        "Wall time from asking podman's Docker API for the container (as kfp.local does) until "
        "the step's command module, executor module and run_fn are imported; every pod pays "
        "it. See [kubeflow.md](kubeflow.md)."),
    "kfp_local": Section(
        "The compiled file under kfp.local against LocalDagRunner",
        "`python -m bench.kfp_local`",
        "The same spans and settings through `kfp.local` (DockerRunner on podman, one "
        "container per task, nothing cached) and through `ctpipe run` in a fresh interpreter."),
    "kfp_cache": Section(
        "What re-runs on open-source KFP when no new data came",
        "`python -m bench.kfp_cache`",
        "The compiled file twice on the same four spans, through KFP's driver and launcher as "
        "`tests/containers/oss_launcher.py` plays them (each task a container, artifacts in an "
        "S3 API on loopback, KFP's cache key); once as `ctpipe compile` writes it, once as "
        "compiled before the snapshot steps."),
    "image": Section(
        "Building the image",
        "by hand: `make base-image`, `make image`",
        "Not part of `make bench`: timed by hand."),
    "report": Section(
        "`ctpipe report`",
        "by hand: `ctpipe report --workspace ws --out report.html`",
        "Not part of `make bench`: timed by hand on the workspace of the screenshot in "
        "[report.md](report.md)."),
    "suite": Section(
        "The test suite",
        "`make test` (CI's `.ci/run`)",
        "Not part of `make bench`: the time of CI's run on a fresh clone."),
}

# Goals of figures as the benchmarks name them (results of a section carry no goals).
GOALS = {
    "pipeline_to_peer_wall_ratio": "≤ 0.5",
    "serving_grpc_overhead_p50_ms": "≤ 1 ms",
    "serving_grpc_8clients_batching_req_per_s": "≥ 1,000",
    "serving_grpc_batch256_rows_per_s": "≥ 50,000",
    "serving_swap_to_new_version_s": "≤ 2 s",
    "serving_swap_failed_requests_count": "0",
    "gateway_overhead_p50_over_floor_ms": "≤ 0.3 ms",
    "gateway_overhead_p99_over_floor_ms": "≤ 2 ms",
    "gateway_8clients_batching_req_per_s": "≥ 1,000",
    "scoring_rows_per_s": "≥ 50,000",
    "monitor_logged_requests_per_s": "≥ 10,000",
    "equal_rolled_back_share": "≤ 0.01",
    "drift_cal_no_shift_draws_flagged": "≤ 1 %",
    "warm_start_steps_fraction": "≤ 0.3",
    "checkpoint_overhead_pct": "< 5",
    "runs_after_new_span_full_workspace_growth_pct": "≤ 20",
    "runs_after_new_span_incremental_workspace_growth_pct": "≤ 20",
    "runs_after_new_span_incremental_to_full_ratio": "≤ 0.15",
    "peer_wall_ratio": "≤ 0.25",
}


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The sections of a results file, each checked for what the page needs."""
    try:
        sections = json.loads(path.read_text())["sections"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: not a results file of bench.report ({error})") from error
    for name, record in sections.items():
        if name not in SECTIONS:
            raise SystemExit(f"{path}: unknown section {name!r}; known: {', '.join(SECTIONS)}")
        missing = {"measured", "machine", "figures"} - set(record)
        if missing:
            raise SystemExit(f"{path}: section {name!r} lacks {', '.join(sorted(missing))}")
    return sections


def page_data(page: Path) -> dict[str, dict[str, Any]]:
    """The section records kept at the end of the page (none when there is no page yet)."""
    if not page.exists():
        return {}
    text = page.read_text()
    start = text.find(DATA_START)
    if start < 0:
        raise SystemExit(f"{page}: its figures block ({DATA_START!r}) is missing")
    end = text.index(DATA_END, start + len(DATA_START))
    return json.loads(text[start + len(DATA_START):end])


def _value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) or abs(value) >= 1000 else f"{value:g}"


def _section(name: str, record: dict[str, Any]) -> list[str]:
    section = SECTIONS[name]
    goals = {**GOALS, **record.get("goals", {})}
    lines = [f"## {section.title}", "", f"{section.what} Reproduce: {section.command}.", "",
             f"Measured {record['measured']} on {record['machine']}.", "",
             "| figure | value | goal |", "|---|---|---|"]
    lines += [f"| {label} | {_value(value)} | {goals.get(label, '')} |"
              for label, value in record["figures"].items()]
    if record.get("notes"):
        lines += ["", record["notes"].rstrip()]
    return lines + [""]


def render(data: dict[str, dict[str, Any]]) -> str:
    """The page: an index, one section per record in SECTIONS' order, the records as data."""
    names = [name for name in SECTIONS if name in data]
    lines = [
        "# Performance figures",
        "",
        "Written by `make bench` (`bench/performance.py`): do not edit by hand. Each section says",
        "how to reproduce it, when and on which machine it was measured. `make bench` writes",
        "`build/bench/results.json` and replaces every section it measures; one module",
        "(`python -m bench.serving`, ...) writes `build/bench/<section>.json`, which",
        "`python -m bench.performance build/bench/<section>.json` merges in. Figures named by",
        "the benchmarks' keys carry their unit in the name; sections recorded before this page",
        "existed keep the labels they were recorded with. What the figures mean for the design:",
        "[scale.md](scale.md).",
        "",
        "| section | measured |",
        "|---|---|",
        *(f"| [{SECTIONS[name].title}](#{_anchor(SECTIONS[name].title)}) | "
          f"{data[name]['measured']} |" for name in names),
        "",
    ]
    for name in names:
        lines += _section(name, data[name])
    block = json.dumps({name: data[name] for name in names}, indent=1, ensure_ascii=False)
    if DATA_END in block:
        raise SystemExit(f"a figure or note holds {DATA_END!r}, which would end the page's data")
    lines += [DATA_START, block, DATA_END]
    return "\n".join(lines) + "\n"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def update(page: Path, results: list[Path]) -> list[str]:
    """Merges the results files into the page (later files win); returns the sections replaced."""
    data = page_data(page)
    replaced: list[str] = []
    for path in results:
        sections = read_results(path)
        data.update(sections)
        replaced += sections
    page.write_text(render(data))
    return replaced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, help="results files of bench.report")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args()
    replaced = update(args.page, args.results)
    print(f"{args.page}: {', '.join(replaced) or 'rendered again'}")


if __name__ == "__main__":
    main()
