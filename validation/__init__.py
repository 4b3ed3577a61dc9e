"""Data validation: drift and skew measured by TFDV against the curated schema, statistics of
sampled examples, and anomalies told in readable lines."""
