"""`ctpipe monitor`'s defaults and where it keeps its latest summary in a workspace: what the
command line's parser, the report and lineage read, without the monitor's TensorFlow and
TFDV."""
from __future__ import annotations

from pathlib import Path

DEFAULT_LAST = 10_000
# The schema's skew thresholds were measured on samples of ~170 rows (docs/drift.md); fewer
# examples are noisier than the thresholds allow for.
DEFAULT_MIN_EXAMPLES = 200
# The workspace's copy of the latest summary, which `ctpipe report` shows.
WORKSPACE_SUMMARY = Path("monitor") / "latest.json"
SUMMARY_FORMAT = 1
