"""The infra validation step's check on a good model and on broken ones, with a real server.

(Here rather than under tests/components: it uses this folder's small exported model.)
"""
from __future__ import annotations

import shutil

import tensorflow as tf
from tfx.components.util import model_utils
from tfx.types import standard_artifacts

from ctpipe.common import features
from ctpipe.components.infra_validation.executor import (
    BLESSED_FILE,
    NOT_BLESSED_FILE,
    check_serving,
    record_blessing,
)
from ctpipe.pipeline.config import DEFAULT_MODEL_NAME
from ctpipe.serving.client.examples import rows_to_examples

MODEL_NAME = DEFAULT_MODEL_NAME


def test_a_good_model_is_blessed_and_the_pusher_would_push_it(saved_model_dir, taxi_rows,
                                                              tmp_path):
    check = check_serving(str(saved_model_dir),
                          rows_to_examples(taxi_rows[1][:5]), MODEL_NAME)
    assert check.blessed, check.reason

    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    record_blessing(blessing, check)
    assert model_utils.is_infra_validated(blessing)
    assert (tmp_path / "blessing" / BLESSED_FILE).is_file()


def test_a_folder_without_saved_model_pb_is_not_blessed(saved_model_dir, taxi_rows, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(saved_model_dir, partial,
                    ignore=shutil.ignore_patterns("saved_model.pb"))
    check = check_serving(str(partial), rows_to_examples(taxi_rows[1][:5]), MODEL_NAME)
    assert not check.blessed
    assert check.reason == f"no saved_model.pb in {partial}: not a SavedModel"

    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    record_blessing(blessing, check)
    assert not model_utils.is_infra_validated(blessing)
    assert (tmp_path / "blessing" / NOT_BLESSED_FILE).is_file()


def test_a_model_that_fails_at_inference_is_not_blessed(taxi_rows, tmp_path):
    class FailsAtInference(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                    name=features.EXAMPLES_KEY)])
        def serve(self, examples):
            # Loads fine; reading serialized protos as numbers fails on every real request.
            return {features.PREDICTION_KEY: tf.strings.to_number(examples)}

    module = FailsAtInference()
    tf.saved_model.save(module, str(tmp_path / "broken"),
                        signatures={"serving_default": module.serve})
    check = check_serving(str(tmp_path / "broken"), rows_to_examples(taxi_rows[1][:5]),
                          MODEL_NAME, ready_timeout=60)
    assert not check.blessed
    assert "Predict" in check.reason and "INVALID_ARGUMENT" in check.reason, check.reason
