"""Offline (batch) scoring: `ctpipe score`.

- `encode`: CSV columns -> serialized tf.Examples, fast (the model's serving input).
- `job`: the Beam job (byte ranges of the input, scored in process or by a served model,
  part files, statistics).
- `gate`: the sanity gate (row count, NaN rate, distribution vs. the model's eval predictions).
- `publish`: which model, run, gate, atomic publication (`OUTPUT/LATEST`).
- `kubeflow`: the same step as a pipeline of its own, compiled for Kubeflow.
"""
