"""The big-tipper model: preprocessing layers plus a small dense network, in plain Keras.

Preprocessing (vocabularies, bucket boundaries, normalisation) is part of the model, fitted
from training data by `fit_feature_stats`, so the exported model takes raw features and training
and serving cannot skew.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Mapping

import keras
import numpy as np

from ctpipe.common import features
from ctpipe.models.options import HParams

TRUNK_PREFIX = "trunk_"
EMBEDDING_PREFIX = "embed_"
HEAD_NAME = "head"


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """What preprocessing needs to know about the training data."""

    mean_variance: dict[str, tuple[float, float]]  # of log1p(value), numeric features
    bucket_boundaries: dict[str, list[float]]  # bucketized features
    vocabularies: dict[str, list]  # categorical features, most frequent first


def _log1p_positive(values: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(values.astype(np.float64), 0.0))


def fit_feature_stats(columns: Mapping[str, np.ndarray], hparams: HParams) -> FeatureStats:
    """Computes normalisation, bucket boundaries and vocabularies from raw training columns."""
    mean_variance, boundaries, vocabularies = {}, {}, {}
    for feature in features.FEATURES:
        values = np.asarray(columns[feature.name])
        if values.size == 0:
            raise ValueError(f"no training values for feature '{feature.name}'")
        if feature.encoding == "numeric":
            logs = _log1p_positive(values)
            mean_variance[feature.name] = (float(logs.mean()), float(max(logs.var(), 1e-6)))
        elif feature.encoding == "bucketized":
            quantiles = np.quantile(values.astype(np.float64),
                                    np.linspace(0, 1, hparams.num_buckets + 1)[1:-1])
            boundaries[feature.name] = sorted({float(q) for q in quantiles})
        else:
            if feature.dtype == "string":
                values = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
            else:
                values = [int(v) for v in values]
            ranked = Counter(values).most_common(hparams.max_vocabulary)
            vocabularies[feature.name] = sorted(v for v, _ in ranked)
    return FeatureStats(mean_variance, boundaries, vocabularies)


def _encode(feature: features.Feature, raw, stats: FeatureStats, hparams: HParams):
    """Raw input tensor -> dense float features for the trunk."""
    name = feature.name
    if feature.encoding == "numeric":
        mean, variance = stats.mean_variance[name]
        logged = keras.ops.log1p(keras.ops.maximum(keras.ops.cast(raw, "float32"), 0.0))
        normalised = keras.layers.Normalization(axis=None, mean=mean, variance=variance,
                                                name=f"normalize_{name}")(logged)
        return keras.ops.expand_dims(normalised, -1)
    if feature.encoding == "bucketized":
        boundaries = stats.bucket_boundaries[name]
        ids = keras.layers.Discretization(bin_boundaries=boundaries, name=f"bucketize_{name}")(raw)
        size = len(boundaries) + 1
    else:
        vocabulary = stats.vocabularies[name]
        lookup_class = keras.layers.StringLookup if feature.dtype == "string" else keras.layers.IntegerLookup
        lookup = lookup_class(vocabulary=vocabulary, num_oov_indices=1, name=f"lookup_{name}")
        ids = lookup(raw)
        size = lookup.vocabulary_size()
    return keras.layers.Embedding(size, hparams.embedding_dim, name=f"{EMBEDDING_PREFIX}{name}")(ids)


def build_model(stats: FeatureStats, hparams: HParams) -> keras.Model:
    """A compiled model from raw features (a dict of rank-1 tensors) to P(big tipper)."""
    inputs = {
        f.name: keras.Input(shape=(), name=f.name, dtype=f.dtype) for f in features.FEATURES
    }
    encoded = [_encode(f, inputs[f.name], stats, hparams) for f in features.FEATURES]
    x = keras.layers.Concatenate(name=f"{TRUNK_PREFIX}concat")(encoded)
    for index, units in enumerate(hparams.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"{TRUNK_PREFIX}dense_{index}")(x)
    output = keras.layers.Dense(1, activation="sigmoid", name=HEAD_NAME)(x)
    model = keras.Model(inputs=inputs, outputs=output, name="big_tipper")
    compile_model(model, hparams.learning_rate)
    return model


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of global training steps [begin, end) with its trainable layers and rate."""

    name: str
    begin: int
    end: int
    learning_rate: float
    # Names of the layers that train; None: every layer.
    trainable: frozenset[str] | None = None


def apply_phase(model: keras.Model, phase: Phase) -> None:
    """Freezes/unfreezes layers for the phase and recompiles (a fresh optimizer)."""
    for layer in model.layers:
        layer.trainable = phase.trainable is None or layer.name in phase.trainable
    compile_model(model, phase.learning_rate)
