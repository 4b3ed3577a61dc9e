"""Transfer learning: a pretrained model's feature trunk under a new head.

The trunk is everything below the head: the embeddings of the categorical and bucketized
features and the dense `trunk_*` layers. Its architecture and preprocessing come from the
pretrained model (weights are meaningless under other vocabularies or widths); only the head is
new. For fine-tuning, the trunk is ordered bottom-up as [embeddings, trunk_dense_0, ...];
`fine_tune_layers` counts from the top.
"""
from __future__ import annotations

import logging

import keras

from ctpipe.models.model import (
    EMBEDDING_PREFIX,
    HEAD_NAME,
    TRUNK_PREFIX,
    HParams,
    Phase,
    build_model,
)
from ctpipe.models.options import TransferOptions
from ctpipe.models.warm_start import (
    IncompatibleModelError,
    copy_weights,
    feature_stats_of,
    input_problems,
    load_keras_model,
    weight_problems,
)

log = logging.getLogger(__name__)

_HEAD_ONLY = frozenset({HEAD_NAME})


def trunk_groups(model: keras.Model) -> list[frozenset[str]]:
    """Weighted trunk layers bottom-up: all embeddings as one group, then each dense layer."""
    embeddings = frozenset(l.name for l in model.layers if l.name.startswith(EMBEDDING_PREFIX))
    dense = [frozenset({l.name}) for l in model.layers
             if l.name.startswith(TRUNK_PREFIX) and l.weights]
    return ([embeddings] if embeddings else []) + dense


def trunk_hparams(pretrained: keras.Model, hparams: HParams) -> HParams:
    """`hparams` with the trunk's widths replaced by the pretrained model's."""
    hidden = tuple(l.units for l in pretrained.layers
                   if l.name.startswith(TRUNK_PREFIX) and isinstance(l, keras.layers.Dense))
    embedding = next((l.output_dim for l in pretrained.layers
                      if isinstance(l, keras.layers.Embedding)), hparams.embedding_dim)
    adopted = hparams.model_copy(update={"hidden_units": hidden, "embedding_dim": embedding})
    if (adopted.hidden_units, adopted.embedding_dim) != (hparams.hidden_units,
                                                         hparams.embedding_dim):
        log.info("transfer: using the pretrained trunk's widths (hidden units %s, embedding "
                 "dim %d) instead of the configured ones", hidden, embedding)
    return adopted


def transferred_model(options: TransferOptions, hparams: HParams) -> tuple[keras.Model, HParams]:
    """A new model whose trunk holds the pretrained weights and whose head is fresh."""
    pretrained = load_keras_model(options.pretrained_model)
    problems = input_problems(pretrained)
    if problems:
        raise IncompatibleModelError(
            f"pretrained model {options.pretrained_model}: " + "; ".join(problems))
    adopted = trunk_hparams(pretrained, hparams)
    model = build_model(feature_stats_of(pretrained), adopted)
    problems = weight_problems(pretrained, model, skip=_HEAD_ONLY)
    if problems:
        raise IncompatibleModelError(
            f"pretrained model {options.pretrained_model}: " + "; ".join(problems))
    copied = copy_weights(pretrained, model, skip=_HEAD_ONLY)
    log.info("transfer (%s): trunk of %d layers from %s, new head", options.strategy, copied,
             options.pretrained_model)
    return model, adopted


def transfer_phases(options: TransferOptions, model: keras.Model, hparams: HParams,
                    total_steps: int) -> list[Phase]:
    """feature_extraction: the head alone throughout. fine_tuning: the head alone first, then
    the top trunk layers with it at the lower rate."""
    if options.strategy == "feature_extraction":
        return [Phase("feature extraction (trunk frozen)", 0, total_steps,
                      hparams.learning_rate, _HEAD_ONLY)]
    groups = trunk_groups(model)
    if options.fine_tune_layers > len(groups):
        raise ValueError(f"transfer fine_tune_layers={options.fine_tune_layers} but the trunk "
                         f"has {len(groups)} layers (embeddings, "
                         f"{len(groups) - 1} dense)")
    unfrozen = frozenset().union(*groups[-options.fine_tune_layers:])
    head_steps = options.head_steps_of(total_steps)
    return [
        Phase("head training (trunk frozen)", 0, head_steps, hparams.learning_rate, _HEAD_ONLY),
        Phase(f"fine-tuning (top {options.fine_tune_layers} trunk layers)", head_steps,
              total_steps, options.fine_tune_learning_rate, _HEAD_ONLY | unfrozen),
    ]
