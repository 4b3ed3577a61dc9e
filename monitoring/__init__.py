"""Serving monitoring: the prediction logs a server writes, compared with what the pipeline
stored beside each pushed version (`ctpipe monitor`)."""
