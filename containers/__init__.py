"""Host-side tooling for the pipeline image: build it, serve podman's Docker API, run KFP's local
orchestrator (`kfp.local` with DockerRunner) against it.

Used by the container tests (tests/containers/) and by `make bench`; not part of the image (setup.py
does not package it). Nothing here imports TensorFlow or TFX.
"""
