"""TensorBoard logs of a training, read back with TensorBoard's own reader: scalars,
hyperparameters and graph; a resumed job continues the same curves in its new ModelRun."""
from __future__ import annotations

import numpy as np
import pytest

from ctpipe.models.options import CheckpointOptions, HParams
from ctpipe.models.tensorboard import EVENT_FILE_PATTERN, TrainingBoard, cut_after
from ctpipe.models.training import train
from tests.models.conftest import Interrupt
from tests.tensorboard_events import curve, hparams, read_events

HPARAMS = HParams(hidden_units=(32, 16), batch_size=64)
SETTINGS = dict(train_steps=80, eval_steps=3, hparams=HPARAMS, steps_per_epoch=30,
                summary_every_steps=10)


def test_a_training_logs_scalars_hparams_and_graph_into_the_model_run(splits, tmp_path):
    model_run = tmp_path / "model_run"
    result = train(*splits["new"], model_run_dir=str(model_run), **SETTINGS)

    reader = read_events(model_run)
    tags = set(reader.Tags()["tensors"])
    assert {"train/loss", "train/auc", "train/accuracy", "validation/loss", "validation/auc",
            "validation/accuracy"} <= tags, tags
    assert sorted(curve(reader, "train/loss")) == list(range(10, 91, 10)), "every 10 steps"
    assert sorted(curve(reader, "train/auc")) == [30, 60, 90]
    validation = curve(reader, "validation/auc")
    assert sorted(validation) == [30, 60, 90], "at each epoch end"
    np.testing.assert_allclose([validation[s] for s in (30, 60, 90)],
                               result.history["val_auc"], rtol=1e-6)
    logged = hparams(reader)
    assert logged["hidden_units"] == "32,16" and logged["batch_size"] == 64
    assert logged["learning_rate"] == pytest.approx(HPARAMS.learning_rate)
    assert logged["start"] == "scratch" and logged["train_steps"] == 90
    graph = reader.Graph()
    assert any(node.op == "ParseExampleV2" for node in graph.node), "the serving graph"


def test_a_resumed_job_continues_the_same_curves_in_its_new_model_run(splits, tmp_path):
    uninterrupted_run = tmp_path / "uninterrupted"
    train(*splits["new"], checkpoints=CheckpointOptions(root=str(tmp_path / "ckpt-a"),
                                                        every_steps=20),
          model_run_dir=str(uninterrupted_run), **SETTINGS)
    options = CheckpointOptions(root=str(tmp_path / "ckpt"), every_steps=20)
    killed_run, resumed_run = tmp_path / "killed", tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train(*splits["new"], checkpoints=options, callbacks=[Interrupt(50)],
              model_run_dir=str(killed_run), **SETTINGS)
    resumed = train(*splits["new"], checkpoints=options, model_run_dir=str(resumed_run),
                    **SETTINGS)

    assert resumed.resumed_from_step == 40
    assert not list(killed_run.glob(EVENT_FILE_PATTERN)), "an execution that died publishes none"
    assert len(list(resumed_run.glob(EVENT_FILE_PATTERN))) == 2, "both attempts' events"
    expected, got = read_events(uninterrupted_run), read_events(resumed_run)
    for tag in ("train/loss", "validation/loss", "validation/auc"):
        want, have = curve(expected, tag), curve(got, tag)
        assert sorted(have) == sorted(want), tag
        np.testing.assert_allclose([have[s] for s in sorted(want)],
                                   [want[s] for s in sorted(want)], rtol=1e-3, err_msg=tag)
    assert hparams(got) == hparams(expected), "written once, by the first attempt"
    assert got.Graph() is not None


def test_the_summaries_past_a_checkpoint_are_cut_and_the_rest_kept(tmp_path):
    board = TrainingBoard(str(tmp_path), str(tmp_path), first_step=0, every_steps=10)
    for step in range(10, 61, 10):
        board.scalars("train", {"loss": 1.0 / step}, step)
    board.close()

    assert cut_after(str(tmp_path), 40) == 2
    assert cut_after(str(tmp_path), 40) == 0, "nothing more to cut"
    assert sorted(curve(read_events(tmp_path), "train/loss")) == [10, 20, 30, 40]
