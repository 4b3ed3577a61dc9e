"""The curated schema: it agrees with common/features.py, and the tools that make and change it
(`curate` behind `schema bootstrap`, `describe` behind `schema show`) keep what drift needs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from ctpipe.common import features
from ctpipe.schemas import curation

CURATED = Path(__file__).resolve().parents[2] / "schemas" / "schema.pbtxt"
TYPES = {"string": schema_pb2.BYTES, "int64": schema_pb2.INT, "float32": schema_pb2.FLOAT}


@pytest.fixture(scope="module")
def curated() -> schema_pb2.Schema:
    return curation.read_schema(CURATED)


def test_every_model_feature_is_in_the_curated_schema_with_its_type(curated):
    by_name = {f.name: f for f in curated.feature}
    for feature in features.FEATURES:
        assert feature.name in by_name, feature.name
        assert by_name[feature.name].type == TYPES[feature.dtype], feature.name
        categorical_id = feature.encoding == "categorical" and feature.dtype == "int64"
        if categorical_id and feature.name != "trip_start_month":
            assert by_name[feature.name].int_domain.is_categorical, feature.name
    for name in (features.LABEL, features.TIPS):
        assert curation.SERVING in by_name[name].not_in_environment, name


def test_every_compared_feature_has_a_comparator_or_says_why_not(curated):
    for feature in curated.feature:
        exempt = "drift-exempt" in feature.annotation.tag
        assert feature.HasField("drift_comparator") != exempt, feature.name
        if exempt:
            assert feature.annotation.comment, f"{feature.name}: the exemption gives a reason"


def test_curating_an_inferred_schema_keeps_categorical_ids_and_sets_the_rules(taxi_rows):
    _, rows = taxi_rows
    complete = [row for row in rows[:900]  # no empty cells (census tracts are rare)
                if all(value for name, value in row.items() if name != "pickup_census_tract")]
    frame = pd.DataFrame(complete)
    for column in frame.columns:
        if column not in ("payment_type", "company"):
            frame[column] = pd.to_numeric(frame[column])
    frame[features.LABEL] = [features.is_big_tipper(t, f) for t, f in
                             zip(frame["tips"], frame["fare"])]
    inferred = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame))

    curated = curation.curate(inferred)

    by_name = {f.name: f for f in curated.feature}
    assert list(curated.default_environment) == ["TRAINING", "SERVING"]
    assert by_name["trip_start_hour"].int_domain.is_categorical
    assert (by_name["trip_start_hour"].int_domain.min,
            by_name["trip_start_hour"].int_domain.max) == (0, 23)
    assert by_name["fare"].presence.min_fraction == 1.0
    assert by_name["company"].presence.min_fraction == 0.0
    assert not by_name["company"].HasField("domain"), "company's vocabulary stays open"
    assert "SERVING" in by_name[features.LABEL].not_in_environment


def test_curating_names_what_the_inferred_schema_lacks():
    with pytest.raises(curation.SchemaToolError, match="lacks feature.*fare"):
        curation.curate(schema_pb2.Schema(feature=[schema_pb2.Feature(name="company")]))


def test_show_describes_ranges_categories_and_exemptions():
    shown = {line.split()[0]: line for line in curation.describe(CURATED).splitlines()[1:]}
    assert "range [0, 23]" in shown["trip_start_hour"] and "categorical" in shown[
        "trip_start_hour"]
    assert "range" not in shown["pickup_community_area"], "is_categorical alone has no range"
    assert "(drift-exempt)" in shown["trip_start_month"]


def test_a_rewrite_keeps_the_header_and_an_unchanged_schema_is_left_alone(curated, tmp_path):
    """`schema accept` with nothing to accept must not touch the file; with a change, the
    comments at the top (where the thresholds come from) stay."""
    target = tmp_path / "schema.pbtxt"
    target.write_text(CURATED.read_text())
    before = target.stat()
    assert curation.write_schema(curated, target) == ""
    after = target.stat()  # an atomic write would have replaced the file (a new inode)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    changed = schema_pb2.Schema()
    changed.CopyFrom(curated)
    next(f for f in changed.feature if f.name == "payment_type").presence.min_fraction = 0.5
    diff = curation.write_schema(changed, target)
    assert "min_fraction: 0.5" in diff and not any(
        line.startswith("-#") for line in diff.splitlines())
    header = [line for line in CURATED.read_text().splitlines() if line.startswith("#")]
    assert header and target.read_text().splitlines()[:len(header)] == header
    assert curation.read_schema(target) == changed
