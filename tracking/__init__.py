"""Experiment tracking in MLflow (optional, off by default): one MLflow run per pipeline run,
pushed models registered as model versions whose aliases follow TF Serving's labels, and an
outbox that keeps what an unreachable tracking server missed until it is back.

`mlflow` is imported only where records are written (`ctpipe.tracking.store`), so the pipeline, its
configuration and the TensorFlow-free commands do not pay for it when tracking is off.
"""
