"""`ctpipe schema accept`: the anomalies of a validated span folded into the curated schema
with TFDV's `update_schema`, for when a change in the data is intended."""
from __future__ import annotations

from pathlib import Path

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.utils import io_utils

from ctpipe.schemas.curation import read_schema, write_schema


def accept(statistics_dir: Path, target: Path) -> str:
    """Folds the anomalies of a span's statistics (an ExampleStatistics artifact's folder) into
    the curated schema; reports what is left."""
    schema = read_schema(target)
    remaining = []
    for split_dir in sorted(Path(statistics_dir).glob("Split-*")):
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
            io_utils.read_bytes_file(str(split_dir / "FeatureStats.pb")))
        schema = tfdv.update_schema(schema, stats)
        anomalies = tfdv.validate_statistics(stats, schema)
        remaining += [f"{name}: {info.short_description}"
                      for name, info in anomalies.anomaly_info.items()]
    diff = write_schema(schema, target)
    lines = [diff or f"{target} unchanged"]
    if remaining:
        lines.append("not resolved by accepting (fix the data or edit the schema by hand): "
                     + "; ".join(sorted(set(remaining))))
    return "\n".join(lines)
