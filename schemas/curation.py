"""The curated schema in `schemas/`: how it is bootstrapped, shown, and deliberately changed.

Bootstrap takes what SchemaGen inferred and applies the curation rules below; `accept`
(schemas/accept.py, with TFDV) folds the anomalies of validated data into the schema, for when a
change in the data is intended. (`ctpipe schema` finds both artifacts in a workspace.) Free of
TFDV and TensorFlow, so `ctpipe schema show` answers at once.
"""
from __future__ import annotations

import difflib
import itertools
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from ctpipe.common import features
from ctpipe.common.errors import UserError
from ctpipe.common.files import write_atomically

TRAINING, SERVING = "TRAINING", "SERVING"
# Columns the source never leaves empty: a span where they go missing is broken.
ALWAYS_PRESENT = ("fare", "trip_miles", "trip_start_hour", "trip_start_day",
                  "trip_start_month", "trip_start_timestamp", "payment_type",
                  features.TIPS, features.LABEL)
INT_RANGES = {"trip_start_hour": (0, 23), "trip_start_day": (1, 7), "trip_start_month": (1, 12)}
NON_NEGATIVE = ("fare", "trip_miles", features.TIPS)
# Free-text categories that legitimately gain values over time: no closed vocabulary.
OPEN_VOCABULARY = ("company",)
# Integer columns that are category ids for the model (common/features.py).
CATEGORICAL_IDS = tuple(f.name for f in features.FEATURES
                        if f.encoding == "categorical" and f.dtype == "int64")


class SchemaToolError(UserError):
    pass


def read_schema(path: Path):
    if not path.is_file():
        raise SchemaToolError(f"schema file not found: {path}")
    try:
        return text_format.Parse(path.read_text(), schema_pb2.Schema())
    except text_format.ParseError as err:
        raise SchemaToolError(f"schema file {path} is not a valid Schema: {err}") from None


def _leading_comments(text: str) -> str:
    """The comment lines at the top of a schema file (where its thresholds come from): the
    text format keeps no comments, so a rewrite carries them over."""
    return "".join(itertools.takewhile(lambda line: line.startswith("#"),
                                       text.splitlines(True)))


def write_schema(schema, path: Path) -> str:
    """Writes atomically, keeping the file's leading comments; returns a unified diff against
    the previous file, empty (and the file untouched) when nothing changed."""
    old = path.read_text() if path.is_file() else ""
    text = _leading_comments(old) + text_format.MessageToString(schema)
    if text == old:
        return ""
    write_atomically(str(path), text)
    return "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                        str(path), str(path)))


def curate(schema):
    """Applies the curation rules to an inferred schema (in place) and returns it."""
    by_name = {f.name: f for f in schema.feature}
    open_domains = {by_name[n].domain for n in OPEN_VOCABULARY if n in by_name}
    missing = [n for n in features.FEATURE_NAMES + (features.LABEL,) if n not in by_name]
    if missing:
        raise SchemaToolError(f"inferred schema lacks feature(s): {', '.join(missing)}")
    del schema.default_environment[:]
    schema.default_environment.extend([TRAINING, SERVING])
    for name, feature in by_name.items():
        del feature.not_in_environment[:]
        if name in (features.LABEL, features.TIPS):
            feature.not_in_environment.append(SERVING)  # unknown when a trip is scored
        feature.presence.min_fraction = 1.0 if name in ALWAYS_PRESENT else 0.0
        feature.presence.min_count = 1 if name in ALWAYS_PRESENT else 0
        if name in INT_RANGES:
            feature.int_domain.min, feature.int_domain.max = INT_RANGES[name]
        if name in CATEGORICAL_IDS:
            # TFDV then counts the ids, which the drift comparators (L-infinity) compare.
            feature.int_domain.is_categorical = True
        if name in NON_NEGATIVE:
            feature.float_domain.CopyFrom(schema_pb2.FloatDomain(min=0.0))
        if name in OPEN_VOCABULARY and feature.HasField("domain"):
            feature.ClearField("domain")
    kept = [d for d in schema.string_domain if d.name not in open_domains]
    del schema.string_domain[:]
    schema.string_domain.extend(kept)
    return schema


def bootstrap(schema_dir: Path, target: Path) -> str:
    """Curated schema from a schema SchemaGen inferred (its artifact folder, `schema_dir`)."""
    inferred = read_schema(Path(schema_dir) / "schema.pbtxt")
    diff = write_schema(curate(inferred), target)
    return diff or f"{target} unchanged"


def describe(path: Path) -> str:
    schema = read_schema(path)
    lines = [f"{path}: {len(schema.feature)} features, environments "
             f"{', '.join(schema.default_environment) or '(none)'}"]
    type_names = schema_pb2.FeatureType.Name
    for feature in schema.feature:
        notes = []
        if feature.presence.min_fraction >= 1.0:
            notes.append("required")
        if feature.not_in_environment:
            notes.append("not in " + ",".join(feature.not_in_environment))
        domain = feature.int_domain
        if domain.HasField("min") or domain.HasField("max"):
            notes.append(f"range [{domain.min}, {domain.max}]")
        if domain.is_categorical:
            notes.append("categorical")
        if feature.HasField("drift_comparator"):
            notes.append("drift compared")
        notes += [f"({tag})" for tag in feature.annotation.tag]
        if feature.HasField("domain"):
            notes.append(f"vocabulary '{feature.domain}'")
        lines.append(f"  {feature.name:<24} {type_names(feature.type):<6} {' '.join(notes)}")
    return "\n".join(lines)
