"""Starting a training from an earlier model's weights, after checking that they fit.

A model is reusable when it carries its Keras form: a `.keras` file, or a SavedModel exported by
`models.export` (which stores the Keras model inside it). The new model is built with the earlier
model's preprocessing (vocabularies, bucket boundaries, normalisation), not refitted on the new
data: an embedding row or a first-layer weight only means something for the vocabulary index or
the input scale it was trained on. New categories therefore map to the out-of-vocabulary bucket
until a model is trained from scratch (warm_start: off).
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from models import features
from models.export import KERAS_MODEL_FILE
from models.model import FeatureStats, HParams, build_model
from models.options import WarmStartOptions

log = logging.getLogger(__name__)

_ENCODING_LAYER = {"numeric": "normalize_{}", "bucketized": "bucketize_{}",
                   "categorical": "lookup_{}"}


class IncompatibleModelError(ValueError):
    """An earlier model cannot provide weights for the model configured now; says why."""


class WarmStartRequiredError(RuntimeError):
    """warm_start is 'required' but no usable base model exists."""


def load_keras_model(path: str) -> keras.Model:
    """A `.keras` file, or a SavedModel folder that holds one at KERAS_MODEL_FILE."""
    location = Path(path)
    if location.is_dir():
        if not (location / KERAS_MODEL_FILE).is_file():
            raise IncompatibleModelError(
                f"{path} holds no Keras model ({KERAS_MODEL_FILE}); only SavedModels exported "
                "by this project (models.export) or .keras files can provide weights")
        location = location / KERAS_MODEL_FILE
    elif not location.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    elif location.suffix != ".keras":
        raise IncompatibleModelError(f"{path} is neither a .keras file nor a SavedModel folder")
    return keras.models.load_model(str(location), compile=False)


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
    """The preprocessing a model was built with (see models.model.fit_feature_stats)."""
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


def try_warm_start(options: WarmStartOptions, hparams: HParams) -> keras.Model | None:
    """The warm-started model, or None when training should start from scratch (and why is
    logged). `required` turns every reason for None into an error."""
    if options.mode == "off":
        log.info("warm start is off: training from scratch")
        return None
    if not options.base_model:
        reason = "no blessed model to start from (first run, or none blessed yet)"
    else:
        try:
            model = warm_started_model(options.base_model, hparams)
        except (IncompatibleModelError, FileNotFoundError) as err:
            reason = f"base model {options.base_model} is incompatible: {err}"
        else:
            log.info("warm start: starting from the weights and preprocessing of base model %s",
                     options.base_model)
            return model
    if options.mode == "required":
        raise WarmStartRequiredError(f"warm_start is 'required' but {reason}")
    log.warning("warm start (auto) falls back to training from scratch: %s", reason)
    return None

