"""Drift and skew findings on real taxi trips, with TFDV statistics and the curated schema's
thresholds: known shifts are flagged by name, an unshifted resample is not."""
from __future__ import annotations

import random

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from bench.drift import read_schema, serialized_examples, statistics_of
from ctpipe.dataprep import spans as data
from ctpipe.validation.drift import (
    DriftError,
    ValueRates,
    drift_findings,
    format_finding,
    prediction_summary,
    skew_findings,
    statistics_of_examples,
    value_rates,
)

SAMPLE_ROWS = 200  # about one 2016 quarter: the smallest spans the thresholds are set for


@pytest.fixture(scope="module")
def schema() -> schema_pb2.Schema:
    return read_schema()


@pytest.fixture(scope="module")
def quarters(taxi_rows) -> dict[str, list[dict[str, str]]]:
    """Labelled trips by quarter, as `ctpipe data prepare` splits them."""
    return dict(data.split_into_spans(taxi_rows[1]))


@pytest.fixture(scope="module")
def reference_rows(quarters) -> list[dict[str, str]]:
    return quarters["2015-Q4"]


@pytest.fixture(scope="module")
def reference(reference_rows, schema):
    return {"train": statistics_of(reference_rows, schema)}


@pytest.fixture(scope="module")
def resample(reference_rows) -> list[dict[str, str]]:
    """An unshifted span: trips drawn from the reference quarter itself."""
    return random.Random(1).choices(reference_rows, k=SAMPLE_ROWS)


def _changed(rows, column: str, change) -> list[dict[str, str]]:
    return [{**row, column: change(index, row[column])} for index, row in enumerate(rows)]


def _crossed(findings) -> set[tuple[str, bool]]:
    return {(f.feature, f.presence is not None) for f in findings if f.crossed}


def _compared(schema, field: str) -> set[str]:
    return {f.name for f in schema.feature if f.HasField(field)}


def test_unshifted_span_is_not_flagged_and_every_feature_is_reported(schema, reference,
                                                                      resample):
    findings = drift_findings({"train": statistics_of(resample, schema)}, reference, schema)

    assert _crossed(findings) == set(), [format_finding(f) for f in findings if f.crossed]
    assert {f.feature for f in findings} == _compared(schema, "drift_comparator")
    assert all(f.kind == "drift" and 0 <= f.distance < f.threshold for f in findings)
    assert all("<= threshold" in format_finding(f) for f in findings)


def test_scaled_fare_is_flagged(schema, reference, resample):
    shifted = _changed(resample, "fare", lambda _, fare: f"{float(fare) * 3:.2f}")

    findings = drift_findings({"train": statistics_of(shifted, schema)}, reference, schema)

    assert _crossed(findings) == {("fare", False)}
    [fare] = [f for f in findings if f.crossed]
    assert fare.comparator == "jensen_shannon_divergence"


def test_payment_mix_turning_to_credit_card_is_flagged(schema, quarters):
    cash_era = quarters["2013-Q1"]  # three of four trips paid in cash
    reference = {"train": statistics_of(cash_era, schema)}
    sample = random.Random(2).choices(cash_era, k=SAMPLE_ROWS)
    to_card = _changed(sample, "payment_type",
                       lambda index, paid: "Credit Card" if paid == "Cash" and index % 5 else paid)
    cards = sum(row["payment_type"] == "Credit Card" for row in to_card) / len(to_card)

    unchanged = drift_findings({"train": statistics_of(sample, schema)}, reference, schema)
    changed = drift_findings({"train": statistics_of(to_card, schema)}, reference, schema)

    assert cards > 0.7
    assert _crossed(unchanged) == set()
    assert _crossed(changed) == {("payment_type", False)}
    [payment] = [f for f in changed if f.crossed]
    assert payment.comparator == "infinity_norm"
    assert format_finding(payment) == (
        f"drift: feature 'payment_type' infinity_norm {payment.distance:.3f} > threshold "
        f"{payment.threshold:.3f}")


def test_serving_requests_like_training_rows_show_no_skew(schema, reference, resample):
    serving = statistics_of(resample, schema, serving=True)  # empty cells are left out

    findings = skew_findings(serving, reference, schema)

    assert _crossed(findings) == set(), [format_finding(f) for f in findings if f.crossed]
    assert {f.feature for f in findings} == _compared(schema, "skew_comparator")
    assert "big_tipper" not in {f.feature for f in findings}


def _values_distance(findings, feature: str) -> float:
    [found] = [f for f in findings if f.feature == feature and f.presence is None]
    return found.distance


def test_feature_missing_from_most_serving_requests_is_skew(schema, reference, resample):
    # Every trip ten times, company left out of nine: the values that remain are distributed
    # exactly as in the resample, only the share of requests carrying one drops to 10 %.
    serving_rows = [row if copy == 0 else {**row, "company": ""}
                    for row in resample for copy in range(10)]

    findings = skew_findings(statistics_of(serving_rows, schema, serving=True), reference, schema)
    unshifted = skew_findings(statistics_of(resample, schema, serving=True), reference, schema)

    assert _crossed(findings) == {("company", True)}
    [company] = [f for f in findings if f.crossed]
    before, after = company.presence
    assert before > 0.5 and after == pytest.approx(before / 10, abs=0.02)
    assert format_finding(company) == (
        f"skew: feature 'company' rows with a value {before:.0%} -> {after:.0%}, infinity_norm "
        f"{company.distance:.3f} > threshold {company.threshold:.3f}")
    # TFDV's own comparison sees only the values that are there, and they did not change.
    assert _values_distance(findings, "company") == pytest.approx(
        _values_distance(unshifted, "company"))


def test_feature_absent_from_all_serving_requests_is_skew(schema, reference, resample):
    serving_rows = [{**row, "company": ""} for row in resample]

    findings = skew_findings(statistics_of(serving_rows, schema, serving=True), reference, schema)

    assert {feature for feature, _ in _crossed(findings)} == {"company"}
    [presence] = [f for f in findings if f.feature == "company" and f.presence]
    assert presence.crossed and presence.presence[1] == 0.0


def test_missing_split_is_named(schema, reference, resample):
    statistics = statistics_of(resample, schema)

    with pytest.raises(DriftError, match="statistics have no split 'train' \\(splits: eval\\)"):
        drift_findings({"eval": statistics}, reference, schema)
    with pytest.raises(DriftError, match="reference statistics have no split 'train'"):
        drift_findings({"train": statistics}, {}, schema)


def test_sliced_statistics_are_refused(schema, reference, resample):
    sliced = statistics_of(resample, schema)
    sliced.datasets.add().CopyFrom(sliced.datasets[0])

    with pytest.raises(DriftError, match="hold 2 datasets; expected exactly one"):
        skew_findings(sliced, reference, schema)


def test_reference_without_a_compared_feature_is_named(schema, reference, resample):
    without_fare = [{k: v for k, v in row.items() if k != "fare"} for row in resample]

    with pytest.raises(DriftError, match="reference statistics lack feature 'fare'"):
        drift_findings(reference, {"train": statistics_of(without_fare, schema)}, schema)


def test_statistics_without_category_counts_are_refused(schema, reference, resample):
    # Without the schema TFDV treats int ids as numbers; L-infinity would then measure 0.
    numeric_ids = statistics_of_examples(serialized_examples(resample, schema),
                                         schema_pb2.Schema())

    with pytest.raises(DriftError, match="'big_tipper' has no value counts .* with the schema"):
        drift_findings({"train": numeric_ids}, reference, schema)


def test_schema_without_comparators_is_refused(reference):
    with pytest.raises(DriftError, match="schema sets no drift_comparator"):
        drift_findings(reference, reference, schema_pb2.Schema())


def test_value_rates_count_missing_and_nan_values(schema, resample):
    serving_rows = [{**row, "fare": "nan"} if index < 10 else
                    {**row, "company": ""} if index < 60 else row
                    for index, row in enumerate(resample)]
    empty_company = sum(1 for row in serving_rows if row["company"] == "")

    rates = value_rates(statistics_of(serving_rows, schema, serving=True),
                        ["fare", "company", "trip_miles", "no_such_feature"])

    assert rates["fare"] == ValueRates(missing=0.0, nan=10 / len(serving_rows))
    assert rates["company"] == ValueRates(missing=pytest.approx(empty_company / len(serving_rows)),
                                          nan=0.0)
    assert empty_company >= 50 and rates["trip_miles"] == ValueRates(missing=0.0, nan=0.0)
    assert rates["no_such_feature"] == ValueRates(missing=1.0, nan=0.0)


def test_prediction_summary_leaves_nulls_out_of_the_figures():
    summary = prediction_summary([0.1, 0.2, None, float("nan"), 0.3, 0.4])

    assert summary["count"] == 6 and summary["null_fraction"] == pytest.approx(2 / 6)
    assert (summary["min"], summary["max"]) == (0.1, 0.4)
    assert summary["mean"] == pytest.approx(0.25)
    assert summary["quantiles"]["0.5"] == 0.3 and set(summary["quantiles"]) == {
        "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"}
    assert prediction_summary([float("nan")]) == {"count": 1, "null_fraction": 1.0}
