"""The Evaluator's results (TFMA metrics and calibration plot) read without TensorFlow.

`tfma.load_metrics` would import TensorFlow and TFMA (tens of seconds on a busy machine) to read
a few kilobytes. TFMA writes its results as TFRecord files of `MetricsForSlice` and
`PlotsForSlice` messages; both are defined in TFMA's generated module `metrics_for_slice_pb2`,
which depends on protobuf's `wrappers.proto` alone. So the module is loaded from its file without
running the `tensorflow_model_analysis` package (whose `__init__` imports TensorFlow), and the
files are read with `ctpipe.common.tfrecord`.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

from ctpipe.common import tfrecord
from ctpipe.common.errors import UserError

_PROTO_MODULE = "tensorflow_model_analysis.proto.metrics_for_slice_pb2"
# TFMA names the model "" when there is no baseline, else "candidate" and "baseline".
CANDIDATE, BASELINE = "candidate", "baseline"
OVERALL = "Overall"


class EvaluationError(UserError):
    """The Evaluator's results are missing or unreadable; the message names the file."""


@functools.cache
def _protos() -> ModuleType:
    """TFMA's `metrics_for_slice_pb2`: the module already imported, or loaded from its file."""
    if _PROTO_MODULE in sys.modules:
        return sys.modules[_PROTO_MODULE]
    package = importlib.util.find_spec("tensorflow_model_analysis")  # finds, does not run it
    if package is None or not package.submodule_search_locations:
        raise EvaluationError("tensorflow_model_analysis is not installed: its result protos "
                              "are needed to read the Evaluator's results")
    path = Path(package.submodule_search_locations[0]) / "proto" / "metrics_for_slice_pb2.py"
    spec = importlib.util.spec_from_file_location(_PROTO_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(path: Path) -> Iterator[bytes]:
    """The records of a TFMA result file; damage is named as the Evaluator's results' error."""
    with path.open("rb") as handle:
        try:
            yield from tfrecord.read_records(handle, str(path))
        except tfrecord.CorruptRecordError as err:
            raise EvaluationError(str(err)) from None


def _result_file(uri: Path, name: str) -> Path:
    files = sorted(uri.glob(f"{name}-*-of-*"))
    if not files:
        raise EvaluationError(f"no {name} file in the Evaluator's output {uri} (TFMA writes "
                              f"{name}-00000-of-00001.tfrecord)")
    return files[0]


def _slice_name(slice_key) -> tuple[str, str]:
    """(column, value) of a single-column slice; (OVERALL, "") for the whole data."""
    if not slice_key.single_slice_keys:
        return OVERALL, ""
    if len(slice_key.single_slice_keys) > 1:
        raise EvaluationError("crossed slices are not reported (the pipeline slices by single "
                              "columns)")
    key = slice_key.single_slice_keys[0]
    value = getattr(key, key.WhichOneof("kind"))
    return key.column, value.decode() if isinstance(value, bytes) else str(value)


def _model(name: str) -> str:
    return name or CANDIDATE


@dataclasses.dataclass
class SliceMetrics:
    column: str  # OVERALL or the sliced feature
    value: str
    metrics: dict[str, dict[str, float]]  # model (candidate | baseline) -> metric -> value


def load_metrics(uri: str | Path) -> list[SliceMetrics]:
    """Every slice's metrics per model (differences to the baseline left out: they are the
    subtraction of two shown values), the whole data first, then by column and value."""
    protos = _protos()
    result = []
    for record in _records(_result_file(Path(uri), "metrics")):
        message = protos.MetricsForSlice.FromString(record)
        metrics: dict[str, dict[str, float]] = {}
        for entry in message.metric_keys_and_values:
            if not entry.key.is_diff and entry.value.HasField("double_value"):
                metrics.setdefault(_model(entry.key.model_name), {})[entry.key.name] = (
                    entry.value.double_value.value)
        result.append(SliceMetrics(*_slice_name(message.slice_key), metrics))

    def order(item: SliceMetrics) -> tuple:
        number = item.value.lstrip("-").replace(".", "", 1).isdigit()
        return (item.column != OVERALL, item.column, not number,
                float(item.value) if number else 0.0, item.value)

    return sorted(result, key=order)


@dataclasses.dataclass(frozen=True)
class CalibrationBin:
    mean_prediction: float
    label_rate: float
    examples: float


def load_calibration(uri: str | Path, bins: int = 10,
                     min_examples: int = 10) -> dict[str, list[CalibrationBin]]:
    """The whole data's calibration plot per model, TFMA's fine buckets merged into `bins`
    equal ranges of the prediction; ranges of fewer than `min_examples` examples are left out
    (their observed rate is noise)."""
    protos = _protos()
    result: dict[str, list[CalibrationBin]] = {}
    for record in _records(_result_file(Path(uri), "plots")):
        message = protos.PlotsForSlice.FromString(record)
        if message.slice_key.single_slice_keys:
            continue
        for entry in message.plot_keys_and_values:
            buckets = entry.value.calibration_histogram_buckets.buckets
            if not buckets:
                continue
            sums = [[0.0, 0.0, 0.0] for _ in range(bins)]  # examples, labels, predictions
            for bucket in buckets:
                weight = bucket.num_weighted_examples.value
                if not weight:
                    continue
                prediction = bucket.total_weighted_refined_prediction.value / weight
                target = sums[min(bins - 1, max(0, math.floor(prediction * bins)))]
                target[0] += weight
                target[1] += bucket.total_weighted_label.value
                target[2] += bucket.total_weighted_refined_prediction.value
            result[_model(entry.key.model_name)] = [
                CalibrationBin(predictions / weight, labels / weight, weight)
                for weight, labels, predictions in sums if weight >= min_examples]
    return result
