"""Host-side tooling for the pipeline image: build it, serve podman's Docker API, run KFP's local
orchestrator (`kfp.local` with DockerRunner) against it, or play open-source KFP's driver and
launcher for it against an S3 API on loopback (`oss_launcher`).

Used by the container tests (tests/containers/) and by `make bench`; not part of the image (setup.py
does not package it). Nothing here imports TensorFlow or TFX.
"""
