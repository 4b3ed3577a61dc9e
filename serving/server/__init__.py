"""`ctpipe serve`: a model server that keeps TensorFlow Serving's contract.

Modules, from the command line inwards:

- `flags`: `tensorflow_model_server`'s command-line flags -> `ServerOptions`.
- `config_files`: the text-proto files TF Serving reads (model config, batching, SSL, monitoring).
- `model_server`: `start(options)` / `serve(options)`: wires everything below together.
- `grpc_api`, `rest_api`: the two front ends; `frontend`: what they share (metrics, logs, reloads).
- `inference`: TF Serving's request semantics; `batching`: server-side batching.
- `lifecycle`: polling base paths, loading, warming up, swapping and unloading versions.
- `servable`: one loaded version and its signatures.
- `metrics`, `prediction_log`: Prometheus metrics and sampled request logs.
- `errors`: `RequestError` (a status code and TF Serving's message) and `StartupError`.
- `process`: runs `ctpipe serve` as a child process (demo, benchmarks, tests).

Importing this package (or `flags`, `errors`, `process`) loads no TensorFlow, so `ctpipe`'s
parser and the launchers stay cheap; the modules that run models import it.
"""
