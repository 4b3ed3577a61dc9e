"""train(): resume after an interruption, best-checkpoint export, retention, warm start and
transfer learning, on small slices of the real taxi data."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from ctpipe.common import features
from ctpipe.models.checkpoints import FINISHED_FILE, STATE_FILE, prune_job_folders
from ctpipe.models.export import export_serving_model
from ctpipe.models.inputs import load_columns
from ctpipe.models.model import build_model, fit_feature_stats
from ctpipe.models.options import CheckpointOptions, HParams, TransferOptions, WarmStartOptions
from ctpipe.models.training import train
from ctpipe.models.transfer import trunk_groups
from ctpipe.models.warm_start import (
    NewData,
    WarmStartRequiredError,
    load_keras_model,
    try_warm_start,
)
from tests.models.conftest import Interrupt

HPARAMS = HParams(hidden_units=(32, 16), batch_size=64)


@pytest.fixture(scope="module")
def base_model_dir(splits, tmp_path_factory) -> str:
    """A model trained on the older spans, exported as the Trainer exports it."""
    result = train(*splits["old"], train_steps=150, eval_steps=3, hparams=HPARAMS,
                   steps_per_epoch=50)
    export_dir = str(tmp_path_factory.mktemp("base") / "Format-Serving")
    export_serving_model(result.model, export_dir)
    return export_dir


def _weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [w.copy() for w in layer.get_weights()]
            for layer in model.layers if layer.weights}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_resumed_training_continues_exactly_where_it_stopped(splits, tmp_path, caplog):
    options = CheckpointOptions(root=str(tmp_path / "ckpt"), every_steps=20)
    settings = dict(train_steps=80, eval_steps=3, hparams=HPARAMS, steps_per_epoch=30)
    uninterrupted = train(*splits["new"], **settings)

    with pytest.raises(KeyboardInterrupt):
        train(*splits["new"], checkpoints=options, callbacks=[Interrupt(50)], **settings)
    caplog.set_level(logging.INFO, logger="ctpipe.models")
    resumed = train(*splits["new"], checkpoints=options, **settings)

    assert resumed.resumed_from_step == 40, "the latest checkpoint before the crash at step 50"
    assert any(r.getMessage().startswith("resuming from checkpoint step 40 at ")
               for r in caplog.records)
    assert resumed.steps == uninterrupted.steps == 90  # 3 epochs of 30
    # Same batches (skipped, not replayed) and the optimizer state restored: same weights.
    for name, weights in _weights(uninterrupted.model).items():
        for ours, theirs in zip(_weights(resumed.model)[name], weights):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=name)


def test_a_finished_job_exports_its_best_checkpoint_and_is_reused_not_retrained(
        splits, tmp_path, caplog):
    options = CheckpointOptions(root=str(tmp_path / "ckpt"), every_steps=20, export="best",
                                best_metric="val_loss")
    settings = dict(train_steps=90, eval_steps=3, hparams=HPARAMS, steps_per_epoch=30)
    first = train(*splits["new"], checkpoints=options, **settings)
    best_loss = min(first.history["val_loss"])
    assert first.exported_best["value"] == pytest.approx(best_loss)
    assert first.exported_best["step"] == 30 * (first.history["val_loss"].index(best_loss) + 1)
    (job,) = [p for p in (tmp_path / "ckpt").iterdir()]
    assert (job / FINISHED_FILE).is_file()

    # The execution was killed after training, before its export landed: the re-run reuses
    # the finished job's weights (the best ones, as configured) instead of training again.
    caplog.set_level(logging.INFO, logger="ctpipe.models")
    again = train(*splits["new"], checkpoints=options, **settings)
    assert again.reused_finished and again.history == {}
    assert again.exported_best["step"] == first.exported_best["step"]
    assert any("finished earlier at step 90: reusing its best weights" in r.getMessage()
               for r in caplog.records)
    for name, weights in _weights(first.model).items():
        assert _same(_weights(again.model)[name], weights), name

    last = CheckpointOptions(root=str(tmp_path / "ckpt-last"), every_steps=20)
    trained = train(*splits["new"], checkpoints=last, **settings)
    reused = train(*splits["new"], checkpoints=last, **settings)
    assert reused.reused_finished
    for name, weights in _weights(trained.model).items():
        assert _same(_weights(reused.model)[name], weights), name


def test_retention_keeps_the_most_recently_active_job_folders(tmp_path):
    for age, name in enumerate(["current", "newest", "middle", "oldest"]):
        folder = tmp_path / name
        folder.mkdir()
        (folder / STATE_FILE).write_text("{}")
        os.utime(folder / STATE_FILE, (1e9 - age * 100, 1e9 - age * 100))
    os.utime(tmp_path / "current" / STATE_FILE, (1, 1))  # oldest of all, but in use
    deleted = prune_job_folders(str(tmp_path), keep=3, current=str(tmp_path / "current"))
    assert sorted(Path(p).name for p in deleted) == ["oldest"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "middle", "newest"]


def test_warm_start_lowers_the_first_epoch_loss_and_logs_its_base(splits, base_model_dir,
                                                                  caplog):
    settings = dict(train_steps=40, eval_steps=3, hparams=HPARAMS, steps_per_epoch=20)
    cold = train(*splits["new"], warm_start=WarmStartOptions("auto", None), **settings)
    caplog.set_level(logging.INFO, logger="ctpipe.models")
    warm = train(*splits["new"], warm_start=WarmStartOptions("auto", base_model_dir), **settings)
    assert warm.origin == f"warm start from {base_model_dir}"
    assert warm.history["loss"][0] < cold.history["loss"][0]
    assert any(f"base model {base_model_dir}" in r.getMessage() for r in caplog.records)


def test_incompatible_base_auto_falls_back_with_the_reason_required_fails(splits,
                                                                          base_model_dir,
                                                                          caplog):
    wider = HParams(hidden_units=(48, 16), batch_size=64)
    settings = dict(train_steps=10, eval_steps=1, hparams=wider, steps_per_epoch=10)
    caplog.set_level(logging.INFO, logger="ctpipe.models")
    result = train(*splits["new"], warm_start=WarmStartOptions("auto", base_model_dir),
                   **settings)
    assert result.origin == "scratch"
    (fallback,) = [r.getMessage() for r in caplog.records if "falls back" in r.getMessage()]
    assert base_model_dir in fallback
    assert "layer 'trunk_dense_0' weight 'kernel' has shape" in fallback
    assert "(32,) in the earlier model, (48,) now" in fallback

    with pytest.raises(WarmStartRequiredError, match="trunk_dense_0"):
        train(*splits["new"], warm_start=WarmStartOptions("required", base_model_dir),
              **settings)
    with pytest.raises(WarmStartRequiredError, match="no served model"):
        train(*splits["new"], warm_start=WarmStartOptions("required", None), **settings)


def _stale_check(base_model_dir: str, newest: dict[str, np.ndarray], mode: str):
    """try_warm_start as the Trainer calls it, the newest span's columns also being the data a
    fresh model would be fitted on."""
    return try_warm_start(WarmStartOptions(mode, base_model_dir), HPARAMS,
                          NewData(newest, lambda: fit_feature_stats(newest, HPARAMS)))


def test_a_base_whose_preprocessing_no_longer_fits_the_newest_span_is_not_used(
        splits, base_model_dir, caplog):
    """Chained warm starts keep the first model's vocabularies and normalisation: new
    companies would all fall into the out-of-vocabulary bucket, tripled fares sit far off the
    model's scale. Under `auto` the run trains from scratch and says why; `required` warns."""
    seen = load_columns(splits["old"][0])
    assert _stale_check(base_model_dir, seen, "auto").model is not None, \
        "the base's own training data fits its preprocessing"

    shifted = dict(seen)
    shifted["company"] = np.array([f"Rebranded Cab {i % 5}".encode()
                                   for i in range(len(seen["company"]))])
    shifted["fare"] = seen["fare"] * 30
    caplog.set_level(logging.INFO, logger="ctpipe.models")
    decision = _stale_check(base_model_dir, shifted, "auto")
    assert decision.model is None
    assert "is stale for the newest span" in decision.reason
    assert "feature 'company': 100% of the newest span's values are missing" in decision.reason
    assert "feature 'fare': the newest span's mean moved" in decision.reason
    assert "feature 'trip_miles'" not in decision.reason, "only what changed is named"
    assert any("falls back to training from scratch" in r.getMessage()
               and "company" in r.getMessage() for r in caplog.records), "never silently"

    assert _stale_check(base_model_dir, shifted, "required").model is not None
    assert any("preprocessing is stale" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


def test_a_removed_feature_is_named_as_the_reason(splits, tmp_path, monkeypatch):
    """A base model that lacks `company` (as if the feature was added since)."""
    without_company = tuple(f for f in features.FEATURES if f.name != "company")
    with monkeypatch.context() as patch:
        patch.setattr(features, "FEATURES", without_company)
        columns = {f.name: np.array(["x", "y"] if f.dtype == "string" else [1, 2])
                   for f in without_company}
        old = build_model(fit_feature_stats(columns, HPARAMS), HPARAMS)
        old.save(tmp_path / "old.keras")
    with pytest.raises(WarmStartRequiredError,
                       match="feature 'company' was added .not an input of the earlier model"):
        train(*splits["new"], train_steps=5, eval_steps=1, hparams=HPARAMS,
              warm_start=WarmStartOptions("required", str(tmp_path / "old.keras")))


def test_feature_extraction_freezes_the_trunk_and_fine_tuning_changes_its_top(
        splits, base_model_dir):
    pretrained = _weights(load_keras_model(base_model_dir))
    settings = dict(train_steps=40, eval_steps=2, hparams=HPARAMS, steps_per_epoch=20)

    extracted = train(*splits["new"], **settings,
                      transfer=TransferOptions(pretrained_model=base_model_dir, strategy="feature_extraction"))
    trunk = [name for group in trunk_groups(extracted.model) for name in sorted(group)]
    assert len(trunk) > 2
    after = _weights(extracted.model)
    for name in trunk:
        assert _same(after[name], pretrained[name]), f"{name} must stay frozen"
    assert not _same(after["head"], pretrained["head"])

    tuned = train(*splits["new"], **settings, transfer=TransferOptions(
        pretrained_model=base_model_dir, strategy="fine_tuning", fine_tune_layers=1, head_steps=20,
        fine_tune_learning_rate=1e-3))
    after = _weights(tuned.model)
    top = "trunk_dense_1"
    assert not _same(after[top], pretrained[top]), "the top trunk layer is fine-tuned"
    for name in trunk:
        if name != top:
            assert _same(after[name], pretrained[name]), f"{name} is below the tuned layers"
