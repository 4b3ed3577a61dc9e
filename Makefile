# Every target builds or refreshes the project-local virtual environment from the lock files
# first; when the lock files and setup.py are unchanged since the last install, that step is a
# no-op. pip itself stays in the venv: TFX installs user-code wheels with `python -m pip`.
# The venv target also generates the serving client's protos from the installed
# tensorflow-serving-api (git-ignored; rebuilt when the venv is).
PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENT_PROTOS := serving/client/tf_serving_protos.binpb

.PHONY: venv test test-all demo bench lint clean image base-image test-containers system-venv \
	system-test

# The pipeline image (Dockerfile). ENGINE: podman when installed, else docker.
IMAGE ?= localhost/ctpipe:dev
ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || \
                  { command -v docker >/dev/null 2>&1 && echo docker; })
# The base image is the Dockerfile's FROM, read from it so that the two cannot differ.
BASE_IMAGE := $(shell sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' Dockerfile | head -n 1)
# podman builds only: the host's CA bundle replaces the build's (HTTPS to PyPI may be re-signed
# by a local CA the host trusts), and the host's uv cache serves the locked wheels. Empty either
# to leave it out.
HOST_CA ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
UV_CACHE ?= $(HOME)/.cache/uv
DEBIAN_MIRROR ?= http://deb.debian.org/debian
BASE_ROOTFS := build/base-rootfs
NO_ENGINE := no container engine: install podman (Debian: scripts/setup-system.sh containers installs \
	it with the settings /etc/containers/containers.conf needs) or docker

venv: $(STAMP) $(CLIENT_PROTOS)

# What the machine needs, installed when missing (Debian packages, podman's settings; a no-op
# when present; scripts/setup-system.sh): python3.11 with venv for every target; for the tests
# also chromium and, unless CONTAINER_TESTS=no, podman, runc, debootstrap and the pipeline
# image's base (`base-image`).
system-venv:
	@scripts/setup-system.sh venv

system-test:
	@scripts/setup-system.sh tests
ifneq ($(CONTAINER_TESTS),no)
	@scripts/setup-system.sh containers
	@$(MAKE) --no-print-directory base-image
endif

# Each top-level package folder is a prerequisite: the editable install maps every folder to
# `ctpipe.<folder>` when it is made (setup.py), so a new folder needs it made again.
$(STAMP): requirements.lock requirements-nodeps.lock setup.py $(wildcard */__init__.py) | system-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--ignore-requires-python --require-hashes -r requirements-nodeps.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation -e .
	touch $(STAMP)

$(CLIENT_PROTOS): $(STAMP) serving/client/generate_protos.py
	$(BIN)/python -m ctpipe.serving.client.generate_protos --out $@

# CONTAINER_TESTS=no where no podman can run (Cloud Build's test step): the tests marked
# `containers` are left out and nothing of podman is installed. PYTEST_ARGS: more pytest flags.
CONTAINER_TESTS ?= yes
test: system-test venv
	$(BIN)/python -m pytest -q $(if $(filter no,$(CONTAINER_TESTS)),-m "not containers") \
		$(PYTEST_ARGS)

demo: venv
	$(BIN)/ctpipe demo --workspace build/demo

# The figures go to build/bench/results.json and into docs/performance.md (bench/performance.py).
bench: venv
	$(BIN)/python -m bench

# pyflakes' errors and import order (ruff.toml); `ruff check --fix .` sorts imports.
lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache

# Builds $(IMAGE) from the Dockerfile; the layers of an unchanged lock are reused.
image:
	@test -n "$(ENGINE)" || { echo "make image: $(NO_ENGINE)" >&2; exit 1; }
	@$(ENGINE) image inspect $(BASE_IMAGE) >/dev/null 2>&1 || \
	  timeout 300 $(ENGINE) pull $(BASE_IMAGE) || { \
	  echo "make image: base image $(BASE_IMAGE) is not available locally and cannot be" \
	       "pulled (no registry reachable?). Make a local stand-in: make base-image" >&2; exit 1; }
ifeq ($(notdir $(ENGINE)),podman)
	$(if $(UV_CACHE),mkdir -p $(UV_CACHE))
	$(ENGINE) build --pull=missing --tag $(IMAGE) \
	  $(if $(HOST_CA),--volume $(HOST_CA):/etc/ssl/certs/ca-certificates.crt:ro) \
	  $(if $(UV_CACHE),--volume $(UV_CACHE):/tmp/uv-cache --build-arg BUILD_UV_CACHE=/tmp/uv-cache) .
else
	$(ENGINE) build --tag $(IMAGE) .
endif

# Makes the Dockerfile's base image when it is neither present nor pullable (no registry here):
# a minimal Debian 12 with python3.11 (debootstrap, as root), imported under the FROM name.
# python3-distutils is named because python3.11-venv depends on python3.11-distutils, a
# virtual package that debootstrap does not resolve; netbase and tzdata because the official
# image has them. It differs from the official image in: Debian's python3.11 (3.11.2, in
# /usr/bin, no `python` command, headers only with python3.11-dev) instead of the latest 3.11
# built into /usr/local; bookworm's main archive without later security updates.
# A no-op when the image exists; where a registry answers, the real image is pulled instead.
base-image:
	@test -n "$(ENGINE)" || { echo "make base-image: $(NO_ENGINE)" >&2; exit 1; }
	@if $(ENGINE) image inspect $(BASE_IMAGE) >/dev/null 2>&1; then \
	  echo "base image $(BASE_IMAGE) exists"; \
	elif timeout 300 $(ENGINE) pull $(BASE_IMAGE) >/dev/null 2>&1; then \
	  echo "base image $(BASE_IMAGE) pulled"; \
	else \
	  test "$$(id -u)" -eq 0 || { echo "make base-image: $(BASE_IMAGE) cannot be pulled, and" \
	    "debootstrap needs root: run it as root, whose podman store the tests must use then" >&2; \
	    exit 1; }; \
	  command -v debootstrap >/dev/null || { echo "make base-image: $(BASE_IMAGE) cannot be" \
	    "pulled and debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }; \
	  echo "base image $(BASE_IMAGE) cannot be pulled: making a Debian 12 stand-in"; \
	  set -e; rm -rf $(BASE_ROOTFS); mkdir -p $(dir $(BASE_ROOTFS)); \
	  debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-distutils,ca-certificates,netbase,tzdata \
	    bookworm $(BASE_ROOTFS) $(DEBIAN_MIRROR) >$(BASE_ROOTFS).log 2>&1 || { \
	    echo "make base-image: debootstrap failed, see $(BASE_ROOTFS).log" >&2; exit 1; }; \
	  rm -rf $(BASE_ROOTFS)/var/cache/apt/archives/*.deb $(BASE_ROOTFS)/var/lib/apt/lists/* \
	    $(BASE_ROOTFS)/etc/resolv.conf $(BASE_ROOTFS)/etc/hostname; \
	  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
	      -C $(BASE_ROOTFS) -c . | $(ENGINE) import \
	    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3.11"]' \
	    --change 'LABEL org.opencontainers.image.description="local stand-in: Debian 12 debootstrap with python3.11 (make base-image)"' \
	    - $(BASE_IMAGE); \
	  rm -rf $(BASE_ROOTFS) $(BASE_ROOTFS).log; \
	fi

# Only the tests that run containers (they build $(IMAGE) first).
test-containers: system-test venv
	$(BIN)/python -m pytest -q -m containers
