"""Names the pipeline's steps share: the custom properties they record on their artifacts, and
the files they hand each other.

One place for them: the steps write them, `ctpipe status` and the report read them from ML
Metadata (TensorFlow-free, so reading them costs no TensorFlow import). TFX's own names are
reused where TFX defines the property (span, blessed, pushed, ...).
"""

# Statistics as StatisticsGen writes them: `Split-<split>/FeatureStats.pb`.
STATISTICS_FILE = "FeatureStats.pb"
# Anomalies as ExampleValidator writes them: `Split-<split>/SchemaDiff.pb`.
ANOMALIES_FILE = "SchemaDiff.pb"
# Sample statistics (drift reference, training statistics) describe training splits.
SAMPLE_SPLIT = "train"

# Examples (ExampleGen): rows written per split, e.g. `rows_train`.
ROWS_PREFIX = "rows_"


def rows_property(split: str) -> str:
    return f"{ROWS_PREFIX}{split}"


# Examples (SpanWindow): TFX's span of the newest span, and ours.
SPAN = "span"
WINDOW_SPANS = "window_spans"  # "1-15"
WINDOW_DIGEST = "window_digest"  # identifies the window's data (ctpipe.common.window)
INGESTED_SPANS = "ingested_spans"  # spans ingested and profiled by this execution, "15,16"
REUSED_SPANS = "reused_spans"  # spans the window refers to where they are stored
# ExampleStatistics of the drift reference: its spans ("" on the first span: none).
REFERENCE_SPANS = "reference_spans"

# Model (ServedModel): the served version handed to the Trainer and the Evaluator.
FOUND = "found"  # 1/0
SERVED_VERSION = "served_version"
TRAINED_ON_SPANS = "trained_on_spans"

# Blessings: TFX's Pusher reads `blessed`; ours add the reason.
BLESSED = "blessed"
REASON = "reason"

# PushedModel: TFX's names, which ctpipe status and TFX tools read.
PUSHED = "pushed"
PUSHED_VERSION = "pushed_version"
PUSHED_DESTINATION = "pushed_destination"

# Data validation (ValidationGate): drift findings, one line each.
DRIFT = "drift"
DRIFTED_FEATURES = "drifted_features"
# Every drift score of a run and its threshold, JSON {"feature" or "feature/presence": [s, t]}.
DRIFT_SCORES = "drift_scores"
# Every compared feature's finding (ctpipe.validation.calibrated_drift.Finding as a dict), in the report.
DRIFT_FILE = "drift.json"
