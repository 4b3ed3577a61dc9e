"""The scoring pipeline compiles for Kubeflow with only container executors, in our image,
through the training pipeline's entry point, and its executor imports."""
from __future__ import annotations

import importlib
import json

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from ctpipe.pipeline.kubeflow.pipeline_file import ENTRYPOINT_COMMAND
from ctpipe.scoring.kubeflow import INPUT_ROOT_PARAMETER, ScoringSettings, compile_scoring_pipeline

IMAGE = "registry.example.com/ctpipe:test"


def test_the_scoring_pipeline_compiles_to_container_steps_only(tmp_path):
    settings = ScoringSettings(pipeline_root="gs://bucket/root", input_root="/data/trips",
                               output_root="/models/scores",
                               serving_model_dir="/models/big_tipper")
    output = tmp_path / "scoring.json"
    compile_scoring_pipeline(settings, IMAGE, output)
    text = json.loads(output.read_text())
    spec = json_format.ParseDict(text, pipeline_spec_pb2.PipelineSpec())
    assert list(spec.root.dag.tasks) == ["BatchScoring"]
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert len(executors) == 1
    for executor in executors.values():
        assert list(executor) == ["container"]
        container = executor["container"]
        assert container["image"] == IMAGE
        assert container["command"] == list(ENTRYPOINT_COMMAND)
        args = container["args"]
        module, _, name = args[args.index("--executor_class_path") + 1].rpartition(".")
        assert getattr(importlib.import_module(module), name).__name__ == "Executor"
        assert "--direct_running_mode=multi_processing" in args
    parameter = text["root"]["inputDefinitions"]["parameters"][INPUT_ROOT_PARAMETER]
    assert parameter["defaultValue"] == "/data/trips"
