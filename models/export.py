"""Export in TF Serving's layout: a SavedModel whose `serving_default` parses tf.Examples.

The Keras model is stored inside the SavedModel too (under assets.extra/, which TF Serving
ignores), so any exported or pushed model can seed a warm start or a transfer.
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from ctpipe.common import features
from ctpipe.models.inputs import parse_examples

KERAS_MODEL_FILE = "assets.extra/keras/model.keras"


def serving_function(model: keras.Model) -> tf.types.experimental.ConcreteFunction:
    """serialized tf.Examples (raw CSV columns, no label) -> big-tipper probability per example."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_KEY)])
    def serve(examples):
        parsed = parse_examples(examples, with_label=False)
        probability = model(parsed, training=False)
        return {features.PREDICTION_KEY: tf.reshape(probability, [-1])}

    return serve.get_concrete_function()


def export_serving_model(model: keras.Model, export_dir: str) -> None:
    """Writes the SavedModel that the Evaluator, the Pusher and TF Serving load."""
    tf.saved_model.save(model, export_dir,
                        signatures={"serving_default": serving_function(model)})
    keras_file = os.path.join(export_dir, KERAS_MODEL_FILE)
    tf.io.gfile.makedirs(os.path.dirname(keras_file))
    model.save(keras_file)
