"""`ctpipe gateway`: a front for TF Serving (or `ctpipe serve`) that speaks its gRPC and REST
APIs and adds what open-source TF Serving lacks in production: sampled PredictionLog files,
Prometheus metrics of what the model answers, and a traffic policy (stable by default, a
canary share sticky per route key, a mirrored shadow, labels followed from the model config
file, so a rollback is a label move).

It runs as a sidecar with the backend on loopback and never imports TensorFlow: requests and
answers are forwarded as protos (`ctpipe.serving.client.protos`).

- `routing`: the traffic policy (`Router`).
- `forwarding`: one call's journey: route, canary fallback, shadow copy, metrics, log.
- `grpc_front`, `rest_front`: the two transports.
- `server`: options, the event loop, start/serve.
"""
