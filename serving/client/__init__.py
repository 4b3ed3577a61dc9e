"""The TensorFlow-free client of TF Serving's API (`ctpipe predict | model-status | label |
rollback`, infra validation). Works unchanged against real TF Serving and `ctpipe serve`.

It never imports TensorFlow or the server, so these commands start in a fraction of a second:
its message classes come from TF Serving's protos through a private descriptor pool
(`protos`, built at install time by `generate_protos`).

- `grpc_client`: `PredictionClient` (Predict, status, metadata, config reload; TLS; gRPC's own
  retry policy for UNAVAILABLE).
- `examples`: raw rows (CSV or JSON) -> serialized tf.Examples of the model's features.
- `version_labels`: moving version labels (stable/canary) in TF Serving's model config file.
- `errors`: `ClientError`, the one error type of this side (a `ctpipe.common.errors.UserError`).
"""
