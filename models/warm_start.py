"""Starting a training from an earlier model's weights, after checking that they fit.

A model is reusable when it carries its Keras form: a `.keras` file, or a SavedModel exported by
`ctpipe.models.export` (which stores the Keras model inside it). The new model is built with the earlier
model's preprocessing (vocabularies, bucket boundaries, normalisation), not refitted on the new
data: an embedding row or a first-layer weight only means something for the vocabulary index or
the input scale it was trained on. New categories therefore map to the out-of-vocabulary bucket;
`stale_preprocessing` notices when that (or a shifted numeric scale) matters for the newest span,
and `auto` then trains from scratch instead.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import tempfile
from typing import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from ctpipe.common import features
from ctpipe.models.export import KERAS_MODEL_FILE
from ctpipe.models.model import FeatureStats, HParams, build_model
from ctpipe.models.options import StalenessLimits, WarmStartOptions

log = logging.getLogger(__name__)

_ENCODING_LAYER = {"numeric": "normalize_{}", "bucketized": "bucketize_{}",
                   "categorical": "lookup_{}"}


class IncompatibleModelError(ValueError):
    """An earlier model cannot provide weights for the model configured now; says why."""


class WarmStartRequiredError(RuntimeError):
    """warm_start is 'required' but no usable base model exists."""


def load_keras_model(path: str) -> keras.Model:
    """A `.keras` file, or a SavedModel folder that holds one at KERAS_MODEL_FILE; a local path
    or a bucket URI (read through TensorFlow's file systems, copied locally for Keras)."""
    if tf.io.gfile.isdir(path):
        keras_file = posixpath.join(path, KERAS_MODEL_FILE)
        if not tf.io.gfile.exists(keras_file):
            raise IncompatibleModelError(
                f"{path} holds no Keras model ({KERAS_MODEL_FILE}); only SavedModels exported "
                "by this project (ctpipe.models.export) or .keras files can provide weights")
    elif not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"model not found: {path}")
    elif not path.endswith(".keras"):
        raise IncompatibleModelError(f"{path} is neither a .keras file nor a SavedModel folder")
    else:
        keras_file = path
    with tempfile.TemporaryDirectory(prefix="ctpipe-model-") as scratch:
        local = os.path.join(scratch, "model.keras")
        tf.io.gfile.copy(keras_file, local)
        return keras.models.load_model(local, compile=False)


def input_problems(model: keras.Model) -> list[str]:
    """Differences between the model's raw inputs/encodings and features.FEATURES."""
    inputs = {name: tensor.dtype for name, tensor in model.input.items()} \
        if isinstance(model.input, dict) else {}
    expected = {f.name: f.dtype for f in features.FEATURES}
    layers = {layer.name for layer in model.layers}
    problems = [f"feature '{n}' was added (not an input of the earlier model)"
                for n in sorted(set(expected) - set(inputs))]
    problems += [f"feature '{n}' was removed (an input of the earlier model)"
                 for n in sorted(set(inputs) - set(expected))]
    for feature in features.FEATURES:
        if feature.name not in inputs:
            continue
        if inputs[feature.name] != expected[feature.name]:
            problems.append(f"feature '{feature.name}' is {expected[feature.name]} now, "
                            f"{inputs[feature.name]} in the earlier model")
        elif _ENCODING_LAYER[feature.encoding].format(feature.name) not in layers:
            problems.append(f"feature '{feature.name}' is {feature.encoding} now; the earlier "
                            "model encodes it differently")
    return problems


def feature_stats_of(model: keras.Model) -> FeatureStats:
    """The preprocessing a model was built with (see ctpipe.models.model.fit_feature_stats)."""
    mean_variance, boundaries, vocabularies = {}, {}, {}
    for feature in features.FEATURES:
        layer = model.get_layer(_ENCODING_LAYER[feature.encoding].format(feature.name))
        if feature.encoding == "numeric":
            mean_variance[feature.name] = (float(np.ravel(layer.input_mean)[0]),
                                           float(np.ravel(layer.input_variance)[0]))
        elif feature.encoding == "bucketized":
            boundaries[feature.name] = [float(b) for b in layer.bin_boundaries]
        else:
            vocabulary = layer.get_vocabulary(include_special_tokens=False)
            vocabularies[feature.name] = [v.decode() if isinstance(v, bytes) else v
                                          for v in vocabulary]
    return FeatureStats(mean_variance, boundaries, vocabularies)


def _weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return {layer.name: layer for layer in model.layers if layer.weights}


def weight_problems(source: keras.Model, target: keras.Model,
                    skip: frozenset[str] = frozenset()) -> list[str]:
    """Layers whose weights cannot be copied by name from `source` into `target`."""
    problems = []
    theirs, ours = _weighted_layers(source), _weighted_layers(target)
    for name, layer in ours.items():
        if name in skip:
            continue
        if name not in theirs:
            problems.append(f"layer '{name}' is new (not in the earlier model)")
            continue
        for mine, other in zip(layer.weights, theirs[name].weights):
            if tuple(mine.shape) != tuple(other.shape):
                problems.append(f"layer '{name}' weight '{mine.name}' has shape "
                                f"{tuple(other.shape)} in the earlier model, {tuple(mine.shape)} now")
        if len(layer.weights) != len(theirs[name].weights):
            problems.append(f"layer '{name}' has {len(theirs[name].weights)} weights in the "
                            f"earlier model, {len(layer.weights)} now")
    problems += [f"layer '{name}' was removed (in the earlier model only)"
                 for name in sorted(set(theirs) - set(ours) - skip)]
    return problems


def copy_weights(source: keras.Model, target: keras.Model,
                 skip: frozenset[str] = frozenset()) -> int:
    """Copies every weighted layer's weights by name; returns how many layers were copied."""
    copied = 0
    for name, layer in _weighted_layers(target).items():
        if name not in skip:
            layer.set_weights(source.get_layer(name).get_weights())
            copied += 1
    return copied


def warm_started_model(base_path: str, hparams: HParams) -> keras.Model:
    """A model as configured by `hparams`, holding the base model's preprocessing and weights;
    raises IncompatibleModelError listing every reason it does not fit."""
    base = load_keras_model(base_path)
    problems = input_problems(base)
    if problems:
        raise IncompatibleModelError("; ".join(problems))
    model = build_model(feature_stats_of(base), hparams)
    problems = weight_problems(base, model)
    if problems:
        raise IncompatibleModelError("; ".join(problems))
    copy_weights(base, model)
    return model


def _coverage(values: np.ndarray, vocabulary: set) -> float:
    return float(np.mean([value in vocabulary for value in values])) if len(values) else 1.0


@dataclasses.dataclass(frozen=True)
class NewData:
    """What a warm start is checked against: the newest span's columns, and the preprocessing
    a model trained from scratch on this run's training data would fit (made on demand)."""

    newest: Mapping[str, np.ndarray]
    fit_fresh: Callable[[], FeatureStats]


def stale_preprocessing(base: FeatureStats, fresh: FeatureStats,
                        newest: Mapping[str, np.ndarray], limits: StalenessLimits) -> list[str]:
    """Why the base model's preprocessing no longer fits the newest span: its categories that a
    vocabulary fitted on this run's data would hold but the base's does not (they would all
    share the out-of-vocabulary bucket), and numeric features whose mean moved far in the
    base's units."""
    problems = []
    for feature in features.FEATURES:
        name = feature.name
        values = np.asarray(newest[name])
        if feature.encoding == "categorical":
            if feature.dtype == "string":
                values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
            gap = (_coverage(values, set(fresh.vocabularies[name]))
                   - _coverage(values, set(base.vocabularies[name])))
            if gap > limits.max_vocabulary_gap:
                problems.append(f"feature '{name}': {gap:.0%} of the newest span's values are "
                                f"missing from the model's vocabulary (limit "
                                f"{limits.max_vocabulary_gap:.0%})")
        elif feature.encoding == "numeric":
            mean, variance = base.mean_variance[name]
            newest_mean = np.log1p(np.maximum(values.astype(np.float64), 0.0)).mean()
            shift = abs(newest_mean - mean) / np.sqrt(variance)
            if shift > limits.max_normalisation_shift:
                problems.append(f"feature '{name}': the newest span's mean moved {shift:.1f} "
                                f"standard deviations from the model's normalisation (limit "
                                f"{limits.max_normalisation_shift})")
    return problems


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """The warm-started model, or None and why training starts from scratch."""

    model: keras.Model | None
    reason: str = ""


def try_warm_start(options: WarmStartOptions, hparams: HParams, new_data: NewData | None = None,
                   limits: StalenessLimits = StalenessLimits()) -> WarmStart:
    """Warm start from `options.base_model` when it fits, else no model and the reason (also
    logged). With the newest span's columns, a base whose preprocessing is stale for them is
    not used under `auto`. `required` turns every other reason into an error."""
    if options.mode == "off":
        log.info("warm start is off: training from scratch")
        return WarmStart(None, "warm start is off")
    if not options.base_model:
        reason = "no served model to start from yet"
    else:
        try:
            model = warm_started_model(options.base_model, hparams)
        except (IncompatibleModelError, FileNotFoundError) as err:
            reason = f"base model {options.base_description} is incompatible: {err}"
        else:
            stale = (stale_preprocessing(feature_stats_of(model), new_data.fit_fresh(),
                                         new_data.newest, limits)
                     if new_data is not None else [])
            if not stale or options.mode == "required":
                if stale:
                    log.warning("warm start (required) from base model %s although its "
                                "preprocessing is stale: %s", options.base_model,
                                "; ".join(stale))
                log.info("warm start: starting from the weights and preprocessing of base "
                         "model %s", options.base_model)
                return WarmStart(model)
            reason = (f"the preprocessing of base model {options.base_description} is stale "
                      "for the newest span: " + "; ".join(stale))
    if options.mode == "required":
        raise WarmStartRequiredError(f"warm_start is 'required' but {reason}")
    log.warning("warm start (auto) falls back to training from scratch: %s", reason)
    return WarmStart(None, reason)
