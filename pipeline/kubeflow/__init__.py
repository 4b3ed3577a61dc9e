"""The Kubeflow Pipelines side of the pipeline: the compile, the API client, the entry point
every step runs in, the Kubernetes platform config and the snapshot steps."""
