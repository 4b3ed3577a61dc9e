"""Drift between spans and training/serving skew, measured by TFDV against the curated schema.

The thresholds live in `schemas/schema.pbtxt` (each feature's `drift_comparator` and
`skew_comparator`); how they were chosen is in docs/drift.md. These functions only compare
statistics and describe the result; the pipeline step that warns or stops, and `ctpipe monitor`,
decide what to do with it.

Two measures per compared feature:
- values: TFDV's own comparison (`tfdv.validate_statistics`) of the value distributions,
  L-infinity distance or Jensen-Shannon divergence, read from the anomalies' `drift_skew_info`.
- presence: the share of rows holding a value, compared with the same comparator over the two
  outcomes "has a value" / "has none" and the same threshold. TFDV's comparators only look at
  the values that are there, so a feature that goes missing in most rows keeps its value
  distribution and would pass unnoticed. An empty CSV cell (an empty value list, as
  CsvExampleGen writes it) and a feature left out of a serving request both count as no value.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal, Mapping, Sequence

import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx_bsl.coders import example_coder

from ctpipe.common.errors import UserError

Kind = Literal["drift", "skew"]
# Statistics as StatisticsGen writes them: one DatasetFeatureStatisticsList per split.
SplitStatistics = Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]

# ExampleGen hashes every span 4:1 into `train` and `eval`. The larger split has the least
# sampling noise (it matters for quarters of ~200 trips), it holds the rows the model learns
# from, and using the same split on both sides compares like with like. TFDV cannot merge two
# splits' final statistics, so "all rows" would need statistics computed separately.
DEFAULT_SPLIT = "train"

INFINITY_NORM = "infinity_norm"
JENSEN_SHANNON = "jensen_shannon_divergence"

_Measurement = anomalies_pb2.DriftSkewInfo.Measurement
_MEASURED = {_Measurement.L_INFTY: INFINITY_NORM,
             _Measurement.JENSEN_SHANNON_DIVERGENCE: JENSEN_SHANNON}
_Reason = anomalies_pb2.AnomalyInfo
_CROSSED = {_Reason.COMPARATOR_L_INFTY_HIGH: INFINITY_NORM,
            _Reason.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH: JENSEN_SHANNON}


class DriftError(UserError, ValueError):
    """The statistics and the schema cannot be compared as given; the message says why."""


@dataclasses.dataclass(frozen=True)
class DriftFinding:
    """One comparison of one feature; reports show every one, crossed or not."""

    kind: Kind
    feature: str
    comparator: str  # INFINITY_NORM or JENSEN_SHANNON
    distance: float
    threshold: float
    crossed: bool
    # For the presence measure: share of rows holding a value (reference, compared side).
    presence: tuple[float, float] | None = None


def drift_findings(statistics: SplitStatistics, reference: SplitStatistics,
                   schema: schema_pb2.Schema, split: str = DEFAULT_SPLIT) -> list[DriftFinding]:
    """The newest span's statistics against a reference with the schema's drift comparators.

    The thresholds were measured for the reference "all earlier spans pooled" (the previous
    run's training window; docs/drift.md) and spans of ~170 train rows or more. `reference` is
    required: the first span has nothing to compare with, so the caller skips the check there.
    """
    return _findings("drift", _one_split(statistics, split, "statistics"),
                     _one_split(reference, split, "reference statistics"), schema)


def skew_findings(serving_statistics: statistics_pb2.DatasetFeatureStatisticsList,
                  training_statistics: SplitStatistics, schema: schema_pb2.Schema,
                  split: str = DEFAULT_SPLIT) -> list[DriftFinding]:
    """Serving statistics (e.g. of prediction logs, which have no splits) against the training
    statistics' `split` with the schema's skew comparators. The thresholds hold for samples of
    ~170 requests or more; smaller ones are noisier than the measurements behind them."""
    return _findings("skew", _one_dataset(serving_statistics, "serving statistics"),
                     _one_split(training_statistics, split, "training statistics"), schema)


def statistics_of_examples(examples: Sequence[bytes], schema: schema_pb2.Schema
                           ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of serialized tf.Examples as StatisticsGen computes them when given the
    schema, but in-process: TFDV's generators with default options, without a Beam pipeline.

    For prediction logs and small samples (tests, bench); the schema makes TFDV count the
    values of int_domain.is_categorical features, which infinity_norm needs.
    """
    if not examples:
        raise DriftError("no examples to compute statistics of")
    record_batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(examples))
    return stats_impl.generate_statistics_in_memory(record_batch,
                                                    tfdv.StatsOptions(schema=schema))


PREDICTION_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def prediction_summary(values: Sequence[float]) -> dict:
    """The distribution of a model's outputs, as the Pusher records it for the eval split and
    `ctpipe monitor` computes it for served requests: count, mean, std, min, max, quantiles
    and the share of null or NaN outputs (left out of the other figures)."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    count = len(values)
    summary: dict = {"count": count,
                     "null_fraction": (count - len(finite)) / count if count else 0.0}
    if not finite:
        return summary
    mean = math.fsum(finite) / len(finite)
    summary.update(
        mean=mean, std=math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / len(finite)),
        min=finite[0], max=finite[-1],
        quantiles={str(q): finite[min(len(finite) - 1, int(q * len(finite)))]
                   for q in PREDICTION_QUANTILES})
    return summary


def format_finding(finding: DriftFinding) -> str:
    """One line, e.g. `drift: feature 'fare' jensen_shannon_divergence 0.31 > threshold 0.20`."""
    relation = ">" if finding.crossed else "<="
    measure = ""
    if finding.presence is not None:
        before, after = finding.presence
        measure = f" rows with a value {before:.0%} -> {after:.0%},"
    return (f"{finding.kind}: feature '{finding.feature}'{measure} {finding.comparator} "
            f"{finding.distance:.3f} {relation} threshold {finding.threshold:.3f}")


def _one_dataset(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                 what: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    if len(statistics.datasets) != 1:
        raise DriftError(f"{what} hold {len(statistics.datasets)} datasets; expected exactly one "
                         "(unsliced statistics of one split)")
    if statistics.datasets[0].num_examples <= 0:
        raise DriftError(f"{what} hold no examples")
    return statistics


def _one_split(statistics: SplitStatistics, split: str,
               what: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    if split not in statistics:
        have = ", ".join(sorted(statistics)) or "none"
        raise DriftError(f"{what} have no split '{split}' (splits: {have})")
    return _one_dataset(statistics[split], f"{what} (split '{split}')")


def _comparators(schema: schema_pb2.Schema, kind: Kind) -> dict[str, list[tuple[str, float]]]:
    """Feature name -> [(comparator, threshold)] of the schema's drift or skew comparators."""
    field = f"{kind}_comparator"
    result: dict[str, list[tuple[str, float]]] = {}
    for feature in schema.feature:
        if not feature.HasField(field):
            continue
        comparator = getattr(feature, field)
        if comparator.HasField("normalized_abs_difference"):
            raise DriftError(f"feature '{feature.name}': {field} normalized_abs_difference is not "
                             f"supported; use {INFINITY_NORM} or {JENSEN_SHANNON}")
        for name in (INFINITY_NORM, JENSEN_SHANNON):
            if comparator.HasField(name):
                settings = getattr(comparator, name)
                if not settings.HasField("threshold") or settings.threshold <= 0:
                    raise DriftError(f"feature '{feature.name}': {field} {name} needs a "
                                     "threshold > 0")
                result.setdefault(feature.name, []).append((name, settings.threshold))
    if not result:
        raise DriftError(f"the schema sets no {field}: nothing to compare")
    return result


def _features(statistics: statistics_pb2.DatasetFeatureStatisticsList
              ) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    return {".".join(f.path.step) or f.name: f for f in statistics.datasets[0].features}


def _common(feature: statistics_pb2.FeatureNameStatistics, name: str
            ) -> statistics_pb2.CommonStatistics:
    kind = feature.WhichOneof("stats")
    if kind not in ("num_stats", "string_stats", "bytes_stats"):
        raise DriftError(f"feature '{name}' has no value statistics ({kind})")
    return getattr(feature, kind).common_stats


def _share_with_values(feature: statistics_pb2.FeatureNameStatistics | None, name: str,
                       num_examples: int, what: str) -> float:
    """Share of rows holding a value; univalent features only (a row's values are counted)."""
    if feature is None:
        return 0.0
    common = _common(feature, name)
    if common.max_num_values > 1:
        raise DriftError(f"feature '{name}' has up to {common.max_num_values} values per row in "
                         f"the {what}; the presence measure needs one value per row at most")
    return common.tot_num_values / num_examples


def _check_value_counts(feature: statistics_pb2.FeatureNameStatistics, name: str,
                        what: str) -> None:
    """TFDV's L-infinity reads value counts; without them it silently measures 0."""
    if _common(feature, name).tot_num_values and not feature.string_stats.rank_histogram.buckets:
        raise DriftError(
            f"feature '{name}' has no value counts in the {what}, which {INFINITY_NORM} needs: "
            "compute statistics with the schema (StatisticsGen(schema=...), "
            "tfdv.StatsOptions(schema=...)) so that int_domain.is_categorical applies")


def _presence_distance(comparator: str, before: float, after: float) -> float:
    """The comparator over the two outcomes "has a value" / "has none"."""
    if comparator == INFINITY_NORM:
        return abs(after - before)
    # Jensen-Shannon divergence in bits, as TFDV computes it (capped at 1).
    divergence = 0.0
    for p, q in ((before, after), (1 - before, 1 - after)):
        m = (p + q) / 2
        divergence += sum(x * math.log2(x / m) for x in (p, q) if x > 0) / 2
    return min(divergence, 1.0)


def _findings(kind: Kind, compared: statistics_pb2.DatasetFeatureStatisticsList,
              reference: statistics_pb2.DatasetFeatureStatisticsList,
              schema: schema_pb2.Schema) -> list[DriftFinding]:
    comparators = _comparators(schema, kind)
    side = "serving statistics" if kind == "skew" else "statistics"
    base = "training statistics" if kind == "skew" else "reference statistics"
    compared_features, reference_features = _features(compared), _features(reference)
    compared_rows = compared.datasets[0].num_examples
    reference_rows = reference.datasets[0].num_examples
    for name, settings in comparators.items():
        if name not in reference_features:
            raise DriftError(f"the {base} lack feature '{name}', which the schema's "
                             f"{kind}_comparator compares: were they computed from this "
                             "project's data?")
        if any(comparator == INFINITY_NORM for comparator, _ in settings):
            _check_value_counts(reference_features[name], name, base)
            if name in compared_features:
                _check_value_counts(compared_features[name], name, side)

    if kind == "drift":
        anomalies = tfdv.validate_statistics(compared, schema, previous_statistics=reference)
    else:
        anomalies = tfdv.validate_statistics(reference, schema, serving_statistics=compared)
    measured: dict[tuple[str, str], float] = {}
    for info in anomalies.drift_skew_info:
        for measurement in (info.drift_measurements if kind == "drift"
                            else info.skew_measurements):
            measured[(".".join(info.path.step), _MEASURED[measurement.type])] = measurement.value
    crossed = {(name, _CROSSED[reason.type])
               for name, info in anomalies.anomaly_info.items()
               for reason in info.reason if reason.type in _CROSSED}

    findings = []
    for name, settings in comparators.items():
        before = _share_with_values(reference_features[name], name, reference_rows, base)
        after = _share_with_values(compared_features.get(name), name, compared_rows, side)
        for comparator, threshold in settings:
            if (name, comparator) in measured:
                findings.append(DriftFinding(kind, name, comparator, measured[(name, comparator)],
                                             threshold, (name, comparator) in crossed))
            elif before > 0 and after > 0:
                raise DriftError(f"TFDV measured no {comparator} for feature '{name}' although "
                                 f"both statistics hold values for it")
            # Else one side has no values at all: only the presence measure applies.
            distance = _presence_distance(comparator, before, after)
            findings.append(DriftFinding(kind, name, comparator, distance, threshold,
                                         distance > threshold, (before, after)))
    return findings


@dataclasses.dataclass(frozen=True)
class ValueRates:
    """How often a feature has no usable value: reported beside the skew distances."""

    missing: float  # share of rows without a value (feature absent or an empty value list)
    nan: float  # share of rows whose value is NaN


def value_rates(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                names: Sequence[str]) -> dict[str, ValueRates]:
    """The missing and NaN shares of each of `names` in one dataset's statistics (univalent
    features; a feature the statistics lack is missing in every row)."""
    dataset = _one_dataset(statistics, "statistics")
    rows, by_name = dataset.datasets[0].num_examples, _features(dataset)
    rates = {}
    for name in names:
        feature = by_name.get(name)
        present = _share_with_values(feature, name, rows, "statistics")
        histograms = feature.num_stats.histograms if feature is not None else ()
        nan = histograms[0].num_nan / rows if histograms else 0.0
        rates[name] = ValueRates(missing=1.0 - present, nan=nan)
    return rates
