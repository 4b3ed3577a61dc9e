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

.PHONY: venv test test-all demo bench lint clean

venv: $(STAMP) $(CLIENT_PROTOS)

$(STAMP): requirements.lock requirements-nodeps.lock setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--ignore-requires-python --require-hashes -r requirements-nodeps.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation -e .
	touch $(STAMP)

$(CLIENT_PROTOS): $(STAMP) serving/client/generate_protos.py
	$(BIN)/python -m serving.client.generate_protos --out $@

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/ctpipe demo --workspace build/demo

bench: venv
	$(BIN)/python -m bench --out bench-results.json

clean:
	rm -rf build .pytest_cache
