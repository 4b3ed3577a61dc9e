"""Export in TF Serving's layout: a SavedModel whose `serving_default` parses tf.Examples."""
from __future__ import annotations

import keras
import tensorflow as tf

from models import features
from models.inputs import parse_examples


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
