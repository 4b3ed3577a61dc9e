"""Turning the Chicago taxi trips into span folders the pipeline ingests (TensorFlow-free)."""
