"""The curated data schema (schema.pbtxt), shipped as package data."""
