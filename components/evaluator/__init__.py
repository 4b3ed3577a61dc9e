"""TFX's Evaluator, told that an empty baseline is no baseline."""
