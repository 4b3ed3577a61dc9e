"""Runs a scoring job end to end: which model, the Beam job, the gate, the publication.

Output folder layout (any number of runs side by side):

    OUTPUT/LATEST                 {"scores": "scores-<run>", "rows": ..., "model_version": ...}
    OUTPUT/scores-<run>/part-*    key, probability, model_version (CSV or Parquet)

`LATEST` is replaced atomically and only after the gate passed; readers open it first. A
refused run's folder is deleted, so the previous result stays what `LATEST` names; the newest
`keep` published folders are kept, older ones removed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Sequence

from ctpipe.common import layout
from ctpipe.common.files import write_atomically
from ctpipe.scoring import gate
from ctpipe.scoring.job import (
    FORMATS,
    ModelSource,
    ScoringError,
    input_files,
    plan_ranges,
    run_beam,
)

LATEST = "LATEST"
RUNS_PREFIX = "scores-"


@dataclasses.dataclass(frozen=True)
class Publication:
    """A published scoring run: its folder, which `LATEST` names once the gate passed (a
    failed gate leaves `LATEST` on the previous run), how many rows which version scored, and
    how long it took."""

    folder: str
    rows: int
    model_version: int  # the version whose scores these are
    seconds: float
    gate: gate.GateResult


def model_source(model_dir: str | None, workspace: str | None, model_name: str,
                 version: int | None) -> ModelSource:
    """A pushed version: `model_dir` itself, or `<workspace>/serving/<model>/<version>` (the
    newest complete one unless `version` is given)."""
    if model_dir:
        if not os.path.isfile(os.path.join(model_dir, layout.SAVED_MODEL_FILE)):
            raise ScoringError(f"no SavedModel in {model_dir} ({layout.SAVED_MODEL_FILE} "
                               "missing)")
        name = os.path.basename(os.path.normpath(model_dir))
        return ModelSource(model_dir=model_dir, version=int(name) if name.isdigit() else 0)
    return pushed_version(os.path.join(workspace or "", "serving", model_name), version)


def pushed_version(base: str, version: int | None) -> ModelSource:
    """The newest complete version folder under a model's serving folder, or `version`."""
    try:
        versions = {v: path for v, path in layout.version_folders(base).items()
                    if os.path.isfile(os.path.join(path, layout.SAVED_MODEL_FILE))}
    except FileNotFoundError:
        raise ScoringError(f"no pushed versions: {base} does not exist") from None
    if not versions:
        raise ScoringError(f"no pushed version under {base}")
    chosen = version if version is not None else max(versions)
    if chosen not in versions:
        raise ScoringError(f"version {chosen} not found under {base} "
                           f"(versions: {', '.join(map(str, sorted(versions)))})")
    return ModelSource(model_dir=versions[chosen], version=chosen)


def score(source: ModelSource, input_path: str, output: str, *, output_format: str = "csv",
          key_column: str = "", settings: gate.GateSettings = gate.GateSettings(),
          beam_args: Sequence[str] = (), keep: int = 3) -> Publication:
    """Scores, checks, publishes; ScoringError (naming the gate's findings) when refused."""
    if output_format not in FORMATS:
        raise ScoringError(f"output format must be one of {', '.join(FORMATS)}")
    ranges = [chunk for path, name in input_files(input_path)
              for chunk in plan_ranges(path, name)]
    rows_read = sum(chunk.rows for chunk in ranges)
    os.makedirs(output, exist_ok=True)
    run = f"{RUNS_PREFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    folder = os.path.join(output, run)
    os.makedirs(folder)
    started = time.perf_counter()
    try:
        stats = run_beam(ranges, source, key_column, folder, output_format, beam_args)
        reference = gate.eval_predictions(source.model_dir) if source.model_dir else None
        result = gate.check(stats, rows_read, reference, settings)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    if not result.passed:
        shutil.rmtree(folder, ignore_errors=True)
        kept = _latest(output)
        raise ScoringError("scoring gate refused the scores: " + "; ".join(result.problems)
                           + (f"; {kept} is still the published result" if kept else
                              "; nothing was published"))
    write_atomically(os.path.join(output, LATEST), json.dumps({
        "scores": run, "format": output_format, "rows": stats.rows,
        "model_version": stats.version, "input": input_path,
        "published_at": int(time.time()), "gate": result.figures, "notes": result.notes},
        indent=2, default=float) + "\n")
    _prune(output, keep)
    return Publication(folder, stats.rows, stats.version, seconds, result)


def _latest(output: str) -> str | None:
    path = os.path.join(output, LATEST)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return os.path.join(output, json.load(handle)["scores"])


def _prune(output: str, keep: int) -> None:
    runs = sorted(name for name in os.listdir(output) if name.startswith(RUNS_PREFIX))
    current = os.path.basename(_latest(output) or "")
    for name in runs[:-max(keep, 1)]:
        if name != current:
            shutil.rmtree(os.path.join(output, name), ignore_errors=True)
