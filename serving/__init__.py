"""A local model server keeping TensorFlow Serving's contract (`ctpipe serve`).

Modules: options (flags), config (text-proto files), models (version lifecycle), servable (one
loaded version), inference (request semantics), server (gRPC + Python API `server.start`), rest
(REST + Prometheus), batching, prediction_log, metrics. No TensorFlow import here: importing
`serving` itself stays cheap.
"""
