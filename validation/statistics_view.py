"""What of the curated schema decides how statistics are computed.

Sampled statistics (the drift reference, the training statistics kept with a pushed model) are
compared across runs and schema edits, so they must not depend on parts of the schema that
change often (accepting a new category changes a domain).
"""
from __future__ import annotations

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2


def statistics_schema(curated_schema: str) -> schema_pb2.Schema:
    """What of the curated schema changes statistics: each feature's type and whether an int
    feature is categorical (TFDV then counts its values, which L-infinity compares). Domains
    are left out, so accepting a new category does not make every span profiled again."""
    curated = text_format.Parse(curated_schema, schema_pb2.Schema())
    view = schema_pb2.Schema()
    for feature in curated.feature:
        kept = view.feature.add(name=feature.name, type=feature.type)
        if feature.HasField("bool_domain"):
            kept.bool_domain.SetInParent()
        elif feature.int_domain.is_categorical:
            kept.int_domain.is_categorical = True
    return view
