"""Pipeline definition (`ctpipe.pipeline.pipeline.create_pipeline`) and one runner per orchestrator."""
