"""ServedModel: the version TF Serving serves now, as the warm-start base and the baseline."""
