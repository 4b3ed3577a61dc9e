"""TFX Trainer entry point: a thin adapter from FnArgs to the pure training functions."""
from __future__ import annotations

import logging

from tfx.components.trainer.fn_args_utils import FnArgs

from models.export import export_serving_model
from models.model import HParams
from models.options import TransferOptions, WarmStartOptions, checkpoint_options_from_dict
from models.training import train

log = logging.getLogger(__name__)


def run_fn(fn_args: FnArgs) -> None:
    custom = fn_args.custom_config or {}
    hparams = HParams.from_dict(custom.get("hparams", {}))
    log.info("Trainer: code version %s, %s", custom.get("code_version"), hparams)
    result = train(
        fn_args.train_files, fn_args.eval_files,
        train_steps=fn_args.train_steps, eval_steps=fn_args.eval_steps,
        hparams=hparams, steps_per_epoch=int(custom.get("steps_per_epoch", 100)),
        seed=int(custom.get("seed", 42)),
        checkpoints=checkpoint_options_from_dict(custom.get("checkpoints", {})),
        warm_start=WarmStartOptions(mode=custom.get("warm_start", "off"),
                                    base_model=fn_args.base_model),
        transfer=TransferOptions.from_dict(custom.get("transfer", {})),
    )
    export_serving_model(result.model, fn_args.serving_model_dir)
    log.info("Trainer: exported after %d steps (%s) to %s", result.steps, result.origin,
             fn_args.serving_model_dir)
