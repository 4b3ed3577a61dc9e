"""Retention: what the workspace may forget (retention/gc.py)."""
