"""TFX Trainer entry point: a thin adapter from FnArgs to the pure training functions."""
from __future__ import annotations

import json
import logging
import posixpath

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from ctpipe.common.window import MANIFEST_FILE, WindowManifest, examples_uri_of
from ctpipe.models.card import SERVED_VERSION_FILE, ModelCard, write_card
from ctpipe.models.export import export_serving_model
from ctpipe.models.options import CODE_VERSION_KEY, WarmStartOptions, from_custom_config
from ctpipe.models.training import incremental_plan, steps_for, train

log = logging.getLogger(__name__)


def _warm_start(mode: str, base_model: str | None) -> WarmStartOptions:
    """The served model the pipeline handed over, if any (the ServedModel step leaves its
    artifact empty when nothing is served yet), named by its served version."""
    if not base_model or not tf.io.gfile.exists(base_model):
        return WarmStartOptions(mode, None)
    record = posixpath.join(posixpath.dirname(base_model.rstrip("/")), SERVED_VERSION_FILE)
    name = None
    if tf.io.gfile.exists(record):
        with tf.io.gfile.GFile(record) as handle:
            name = f"served version {json.loads(handle.read())['version']}"
    return WarmStartOptions(mode, base_model, name)


def run_fn(fn_args: FnArgs) -> None:
    options = from_custom_config(fn_args.custom_config or {})
    code_version = fn_args.custom_config[CODE_VERSION_KEY]
    examples_uri = examples_uri_of(fn_args.train_files[0])
    with tf.io.gfile.GFile(posixpath.join(examples_uri, MANIFEST_FILE)) as handle:
        window = WindowManifest.from_json(handle.read())
    # The budget follows the data: `epochs` passes over the window, at least train_steps.
    train_steps = steps_for(options.epochs, window.rows["train"], options.hparams.batch_size,
                            fn_args.train_steps)
    log.info("Trainer: code version %s, spans %s (%d training examples), %d steps, %s",
             code_version, window.span_range, window.rows["train"], train_steps, options)
    incremental = (incremental_plan(window, options.incremental, options.hparams.batch_size,
                                    train_steps)
                   if options.training == "incremental" else None)
    result = train(
        window.files("train"), window.files("eval"),
        train_steps=train_steps, eval_steps=fn_args.eval_steps,
        hparams=options.hparams, steps_per_epoch=options.steps_per_epoch, seed=options.seed,
        checkpoints=options.checkpoints,
        warm_start=_warm_start(options.warm_start, fn_args.base_model),
        transfer=options.transfer,
        newest_files=window.files("train", [window.newest]),
        staleness=options.staleness, incremental=incremental,
        model_run_dir=fn_args.model_run_dir, summary_every_steps=options.summary_every_steps)
    export_serving_model(result.model, fn_args.serving_model_dir)
    write_card(fn_args.serving_model_dir, ModelCard(
        window_digest=window.digest, window_spans=window.span_range,
        newest_span=window.newest.span,
        training="incremental" if result.incremental else "full",
        origin=result.origin, steps=result.steps, code_version=code_version))
    log.info("Trainer: exported after %d steps (%s, on %s) to %s", result.steps, result.origin,
             result.data, fn_args.serving_model_dir)
