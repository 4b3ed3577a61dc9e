"""Snapshot steps: on Kubeflow, what a step reads outside the artifact store, as a parameter of
that step, so that KFP's cache reuses its result exactly when nothing it reads changed.

ExampleGen (the data folder), SpanWindow (the span index and the data folder) and ServedModel
(the serving folder) read state no artifact carries. With LocalDagRunner a custom driver puts a
description of it into the step's `snapshot` parameter before the cache is consulted
(common/snapshot.py). Open-source KFP runs no custom drivers, and its cache key holds the
ids of the input artifacts (backend/src/v2/cacheutils/cache.go GenerateCacheKey): a step it
does not cache hands every step after it new ids, so nothing after it is ever cached. Here a
small step ahead of each of them computes the same description, uncached, and hands it over as
an output parameter (TFX compiles `.future()[0].value` of a String output into a task output
parameter); the step's cache key then holds the description by value
(GenerateCacheKey's input_parameter_values), and the step, with everything after it, is reused
when the data, the index and the served model are as before.
"""
# No `from __future__ import annotations`: TFX's @component reads the annotations as types.

import json

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputDict, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from ctpipe.common import properties
from ctpipe.components.example_gen.component import input_config
from ctpipe.components.example_gen.executor import resolve_span
from ctpipe.components.served_model.executor import snapshot_of as served_version_snapshot
from ctpipe.components.span_window.executor import snapshot_of as window_snapshot


@component
def ExampleGenSnapshot(input_base: Parameter[str], requested_span: Parameter[int],
                       file_format: Parameter[str]) -> OutputDict(snapshot=str):
    """The span ExampleGen will ingest and its files' fingerprint (names, sizes, times)."""
    span, fingerprint = resolve_span(input_base, input_config(file_format), requested_span)
    return {"snapshot": json.dumps({"span": span, "fingerprint": fingerprint})}


@component
def SpanWindowSnapshot(ingested: Parameter[str], data_root: Parameter[str],
                       span_pattern: Parameter[str], span_index: Parameter[str],
                       window: Parameter[int]) -> OutputDict(snapshot=str):
    """What SpanWindow's window will be made of (its LocalDagRunner driver's snapshot), ending
    at the span ExampleGenSnapshot found (`ingested`): a parameter, not ExampleGen's artifact,
    which KFP's launcher would download whole for this step."""
    settings = {"data_root": data_root, "span_pattern": span_pattern,
                "span_index": span_index, "window": window}
    return {"snapshot": window_snapshot(settings, json.loads(ingested)["span"])}


@component
def ServedModelSnapshot(examples: InputArtifact[standard_artifacts.Examples],
                        serving_model_dir: Parameter[str]) -> OutputDict(snapshot=str):
    """The served version ServedModel will take (its LocalDagRunner driver's snapshot)."""
    return {"snapshot": served_version_snapshot(serving_model_dir, examples.get_string_custom_property(
        properties.WINDOW_DIGEST))}
