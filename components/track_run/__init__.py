"""TrackRun: the MLflow record of a pipeline run on Kubeflow, as the run's last step."""
