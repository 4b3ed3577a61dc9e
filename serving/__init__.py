"""TensorFlow Serving's contract, locally: a model server and a TensorFlow-free client.

Two subpackages, because they have opposite import budgets:

- `ctpipe.serving.server`: `ctpipe serve`, a model server with TF Serving's flags, gRPC and REST APIs,
  errors and version lifecycle. It loads SavedModels, so it runs TensorFlow.
- `ctpipe.serving.client`: the gRPC client behind `ctpipe predict | model-status | label | rollback`.
  It must start fast, so it never imports TensorFlow (nor the server); it speaks only TF
  Serving's wire protocol and works against real TF Serving too.

Both read TF Serving's folder layout of model versions from `ctpipe.common.layout`.
Importing `serving` itself loads nothing.
"""
