# The image every step of the Kubeflow pipeline runs in: CPython 3.11 with a virtual environment
# built from the same lock files and with the same install commands as the tests' environment
# (Makefile, target `venv`), and this project installed into it. `make image` builds it.
#
# The base is the public Python image. Where no registry can be reached, `make base-image` makes
# a Debian 12 stand-in under this same name (debootstrap: Debian's python3.11 in /usr/bin instead
# of /usr/local/bin, no `python` command), so this file uses only what both provide:
# `python3.11` on PATH, its `venv` module, and the CA bundle at /etc/ssl/certs.
FROM docker.io/library/python:3.11-slim-bookworm

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# Set by `make image` with podman: the host's uv cache mounted at this path for the build only
# (empty: no cache, downloads from PyPI). Build-time only; nothing of it stays in the image.
# Not named UV_CACHE_DIR: build arguments are in the environment of RUN, and uv reads that one.
ARG BUILD_UV_CACHE=

# The dependencies, exactly as `make venv` installs them: uv from the hashed lock, then tfx and
# ml-pipelines-sdk without their (pre-3.11) dependency metadata. pip stays in the venv: TFX
# installs user-code wheels with `python -m pip`. uv itself is removed again.
# - Some locked packages are source distributions; pyfarmhash needs a C++ compiler (and Python's
#   headers, which Debian's python3.11 lacks). Both are installed for this step and purged in it
#   (binutils too, which python3.11's "Suggests" would otherwise keep).
# - Bytecode is compiled here: every container of a pipeline starts a fresh interpreter, and
#   without .pyc files each would compile the TensorFlow/TFX sources it imports (about 10 s).
# - SSL_CERT_FILE/PIP_CERT name the system bundle, so that a TLS-intercepting proxy's CA can be
#   mounted there at build time (see the Makefile); with the public base it is the default.
COPY requirements.lock requirements-nodeps.lock /tmp/locks/
RUN set -eu; \
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
           PIP_DISABLE_PIP_VERSION_CHECK=1 UV_LINK_MODE=copy DEBIAN_FRONTEND=noninteractive; \
    build_deps=g++; \
    python3.11 -c 'import os, sys, sysconfig; \
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || build_deps="$build_deps python3.11-dev"; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends $build_deps >/dev/null; \
    python3.11 -m venv "$VIRTUAL_ENV"; \
    python -m pip install --quiet --no-cache-dir uv==0.13.9; \
    if [ -n "$BUILD_UV_CACHE" ]; then cache="--cache-dir $BUILD_UV_CACHE"; else cache=--no-cache; fi; \
    uv pip install --quiet $cache --compile-bytecode --python "$VIRTUAL_ENV/bin/python" \
        --require-hashes -r /tmp/locks/requirements.lock; \
    python -m pip install --quiet --no-cache-dir --no-deps --ignore-requires-python \
        --require-hashes -r /tmp/locks/requirements-nodeps.lock; \
    python -m pip uninstall --quiet --yes uv; \
    apt-get purge -y -qq --autoremove -o APT::AutoRemove::SuggestsImportant=false \
        $build_deps >/dev/null; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /tmp/locks /tmp/uv-*.lock /root/.cache

# The project, installed (not editable) so that `python -m ctpipe.<module>` works from any
# directory. setup.py decides what is installed (every package folder, under `ctpipe`); the
# build context (.dockerignore) leaves out what is never installed. The source copy is removed.
COPY . /tmp/src
RUN set -eu; \
    python -m pip install --quiet --no-cache-dir --no-deps --no-build-isolation /tmp/src; \
    rm -rf /tmp/src /root/.cache

# ---- Build-time generation steps of the installed package, one RUN each (as `make venv`) ----
# The serving client's protos, from the installed tensorflow-serving-api, into the package.
RUN python -m ctpipe.serving.client.generate_protos
# ---------------------------------------------------------------------------------------------

# Fail the build when any module of the project (executors, the Trainer's run_fn, the command
# line, serving) or TFX's v2 container entrypoint cannot be imported from outside a source tree.
WORKDIR /
RUN python -c "import importlib, pkgutil, ctpipe; \
[importlib.import_module(m.name) for m in pkgutil.walk_packages(ctpipe.__path__, 'ctpipe.') \
 if not m.name.endswith('__main__')]; \
import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"

# Replaces the base's labels (the local stand-in base describes itself).
LABEL org.opencontainers.image.title="ctpipe" \
      org.opencontainers.image.description="ctpipe pipeline image: TFX 1.16 on Python 3.11, the project's locked environment"

# Kubeflow sets every step's command; no ENTRYPOINT, because kfp.local's DockerRunner (and
# `docker run IMAGE CMD`) pass the step's command as CMD, which an ENTRYPOINT would prefix.
CMD ["ctpipe", "--help"]
