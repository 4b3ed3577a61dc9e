# The image every component of the Kubeflow pipeline runs in: TFX 1.16 with this project
# installed, so the executors of our components and `models.trainer.run_fn` import inside it.
# Built by build.yaml; `ctpipe compile --image` names it.
FROM tensorflow/tfx:1.16.0

# The image already holds TFX 1.16 and its dependencies (TensorFlow, Beam, TFDV, TFMA, KFP).
# Added: what the project needs beyond them (the model server used by infra validation),
# at the versions of requirements.lock.
RUN python -m pip install --no-cache-dir aiohttp==3.14.5 prometheus-client==0.26.0

WORKDIR /pipeline
COPY setup.py ./
COPY ctpipe ./ctpipe
COPY pipeline ./pipeline
COPY components ./components
COPY models ./models
COPY schemas ./schemas
COPY serving ./serving
# --no-deps: TFX's own image pins the stack; an editable install keeps the code (and the
# curated schema at /pipeline/schemas/schema.pbtxt, see pipeline/kubeflow_runner.py) here.
# The serving client's protos are generated from the image's tensorflow-serving-api, as
# `make venv` does.
RUN python -m pip install --no-cache-dir --no-deps -e /pipeline && \
    python -m serving.client.generate_protos && \
    python -c "import models.trainer, components.window_example_gen, components.validation_gate, components.infra_validation, serving.client.grpc_client"

# KubeflowV2DagRunner sets the command of every step; this entrypoint serves `docker run`.
ENTRYPOINT ["ctpipe"]
