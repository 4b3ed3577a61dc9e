from __future__ import annotations

from ctpipe.pipeline.config import local_config
from ctpipe.pipeline.pipeline import create_pipeline


def test_pusher_waits_for_the_infra_blessing_of_the_trained_model(tmp_path):
    config = local_config(tmp_path / "ws", tmp_path / "data")
    nodes = {node.id: node for node in create_pipeline(config).components}
    infra, pusher = nodes["InfraValidation"], nodes["Pusher"]

    assert pusher.inputs["infra_blessing"].producer_component_id == "InfraValidation"
    assert infra.inputs["model"].producer_component_id == "Trainer"
    assert infra.inputs["examples"].producer_component_id == "SpanWindow"
    assert infra.exec_properties["model_name"] == config.model_name
