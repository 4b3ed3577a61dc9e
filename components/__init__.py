"""Custom pipeline steps."""
