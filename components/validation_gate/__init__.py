"""ValidationGate: stops the run on data that does not match the curated schema, or has
drifted under `drift_policy: stop`; reports drift otherwise."""
