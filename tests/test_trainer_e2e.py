"""The Trainer in the real local pipeline: killed mid-training (SIGKILL), resumed on the next run;
then a new span arrives and the Trainer warm-starts from the served model."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import local_config
from ctpipe.pipeline.local_runner import run_local
from tests.tensorboard_events import curve, read_events

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
# Spans of ~900 trips leave census-tract vocabulary gaps near the 5 % default; the staleness limit
# is the one the other end-to-end tests use (docs/trainer.md), since warm start is the subject.
SETTINGS = dict(train_steps=600, eval_steps=5, min_auc=0.5, max_auc_regression=0.5,
                trainer={"steps_per_epoch": 200, "checkpoints": {"every_steps": 50},
                         "staleness": {"max_vocabulary_gap": 0.15}})
_RUN_PIPELINE = """
import json, sys
from ctpipe.pipeline.config import local_config
from ctpipe.pipeline.local_runner import run_local
workspace, data_root, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
run_local(local_config(workspace, data_root, settings), workspace)
"""


def _committed_step(checkpoint_root: Path) -> int:
    """The step of the latest checkpoint whose save completed (the index file names it)."""
    steps = [int(m.group(1)) for index in checkpoint_root.glob("*/checkpoint")
             for m in [re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', index.read_text(), re.M)]
             if m]
    return max(steps, default=0)


def _messages(caplog, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


def _kill_when_checkpointed(command: list[str], checkpoint_root: Path, log_file: Path) -> int:
    """Runs the pipeline in a child process and SIGKILLs it once a checkpoint with step > 0 is
    on disk; returns the latest committed checkpoint step at the kill."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with log_file.open("w") as out:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    try:
        while not _committed_step(checkpoint_root):
            if child.poll() is not None:
                pytest.fail(f"pipeline ended ({child.returncode}) before a checkpoint appeared:\n"
                            + log_file.read_text()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint within 300 s:\n" + log_file.read_text()[-3000:])
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return _committed_step(checkpoint_root)


def test_killed_training_resumes_then_warm_starts_on_a_new_span(tmp_path, small_source, caplog):
    spans = tmp_path / "spans"
    data.prepare(spans, small_source)
    incoming = tmp_path / "incoming"
    for span in (1, 2, 3, 4):  # a whole year: the next quarter brings no unseen month
        shutil.copytree(spans / f"span-{span}", incoming / f"span-{span}")
    workspace = tmp_path / "ws"
    config = local_config(workspace, incoming, SETTINGS)
    checkpoint_root = Path(config.trainer_options().checkpoints.root)

    killed_at = _kill_when_checkpointed(
        [sys.executable, "-c", _RUN_PIPELINE, str(workspace), str(incoming), json.dumps(SETTINGS)],
        checkpoint_root, tmp_path / "killed-run.log")
    assert 0 < killed_at < 600
    assert not Path(config.serving_model_dir).exists(), "the killed run must not have pushed"

    caplog.set_level(logging.INFO, logger="ctpipe.models")
    run = run_local(config, workspace)
    events = {e.component: e.state for e in run if e.state != "note"}
    resumed = _messages(caplog, "resuming from checkpoint step")
    assert len(resumed) == 1, resumed
    step = int(re.search(r"step (\d+) at ", resumed[0]).group(1))
    assert step == killed_at, "resumes from the latest checkpoint: at most one interval lost"
    assert _messages(caplog, f"trained 600 steps ({600 - step} in this run)")
    # What `ctpipe run` shows under the Trainer's line.
    notes = [e.message for e in run if e.state == "note" and e.component == "Trainer"]
    assert notes == [f"Trainer: resumed from checkpoint step {step} of 600 (from scratch, since "
                     "no served model to start from yet)"], notes
    assert events["SpanWindow"] == "cached" and events["Trainer"] == "executed"
    assert events["Pusher"] == "executed"
    pushed = list(Path(config.serving_model_dir).glob("*/saved_model.pb"))
    assert len(pushed) == 1
    job_folders = [p.parent for p in checkpoint_root.glob("*/FINISHED.json")]
    assert len(job_folders) == 1, "the finished job is marked so that it never resumes"
    # TensorBoard: the resumed execution's ModelRun continues the killed attempt's curves.
    model_runs = sorted((workspace / "pipeline_root" / "Trainer" / "model_run").iterdir(),
                        key=lambda p: int(p.name))
    assert len(model_runs) == 2 and not list(model_runs[0].iterdir()), "killed: none published"
    assert len(list(model_runs[1].glob("events.out.tfevents.*"))) == 2, "both attempts"
    events = read_events(model_runs[1])
    assert sorted(curve(events, "train/loss")) == list(range(10, 601, 10))
    assert sorted(curve(events, "validation/auc")) == [200, 400, 600]

    caplog.clear()
    shutil.copytree(spans / "span-5", incoming / "span-5")
    run = run_local(config, workspace)
    events = {e.component: e.state for e in run if e.state != "note"}
    started = _messages(caplog, "warm start: starting from the weights")
    assert len(started) == 1, _messages(caplog, "warm start")
    served = pushed[0].parent.name
    notes = [e.message for e in run if e.state == "note" and e.component == "Trainer"]
    assert notes == [f"Trainer: warm start from served version {served}, 600 steps on "
                     "5 training file(s)"], notes
    assert not _messages(caplog, "resuming from checkpoint"), "a new job starts at step 0"
    assert events["Trainer"] == "executed"
