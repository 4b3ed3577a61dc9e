"""The window `ctpipe monitor` reads unless told otherwise; pure Python (no TensorFlow), so that
the command line's parser shows these defaults without loading the libraries."""

DEFAULT_LAST = 10_000
# The schema's skew thresholds were measured on samples of ~170 rows (docs/drift.md); fewer
# examples are noisier than the thresholds allow for.
DEFAULT_MIN_EXAMPLES = 200
