"""Calibrated drift on the real quarters (validation/calibrated_drift.py): clear shifts are
flagged on small (~170-row) and on large spans, the real 2016 quarters are not, and a schema
override is used as is."""
from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format

from bench.drift import quarters, read_schema, serialized_examples, train_rows
from ctpipe.validation.calibrated_drift import (
    OVERRIDE_TAG,
    VALUES,
    calibrated_findings,
    compared_features,
    critical_value,
    ks_distance,
    sample_of,
)
from ctpipe.validation.drift import DriftError


@pytest.fixture(scope="module")
def schema():
    return read_schema()


@pytest.fixture(scope="module")
def spans(schema) -> list[list[dict[str, str]]]:
    """The 16 real quarters' train rows (2016's: about 170 each)."""
    return [train_rows(rows, schema) for _, rows in quarters()]


def _samples(span_rows, schema):
    kinds = {name: kind for name, (kind, _) in compared_features(schema).items()}
    return [sample_of(serialized_examples(rows, schema), kinds) for rows in span_rows]


def _large(rows, size: int, seed: int) -> list[dict[str, str]]:
    """A quarter replicated to a large span as the gate samples it: rows drawn with
    replacement, floats jittered by 1 %."""
    rng = np.random.default_rng(seed)
    result = []
    for index in rng.integers(0, len(rows), size):
        row = dict(rows[index])
        for name in ("fare", "trip_miles", "tips", "pickup_latitude", "dropoff_latitude"):
            if row.get(name):
                row[name] = f"{float(row[name]) * (1 + 0.01 * rng.standard_normal()):.6f}"
        result.append(row)
    return result


def _flagged(findings) -> set[str]:
    return {f.label for f in findings if f.crossed}


def _miles_times_3(row):
    if row["trip_miles"]:
        row["trip_miles"] = str(float(row["trip_miles"]) * 3)


def _cash_to_card(row):
    if row["payment_type"] == "Cash":
        row["payment_type"] = "Credit Card"


def _no_company(row):
    del row["company"]


SHIFTS = [(_miles_times_3, "trip_miles"), (_cash_to_card, "payment_type"),
          (_no_company, "company/presence")]


def test_the_real_2016_quarters_do_not_drift_in_a_4_span_window(spans, schema):
    """Spans 13-16, the baseline run that fixed thresholds stopped (company 0.155 > 0.15)."""
    samples = _samples(spans[12:16], schema)
    for newest in (2, 3, 4):
        findings = calibrated_findings(samples[:newest], schema)
        assert not _flagged(findings), [f.describe() for f in findings if f.crossed]
    company = next(f for f in calibrated_findings(samples, schema)
                   if f.feature == "company" and f.measure == VALUES)
    assert company.rows[0] < 200 and company.source in ("test", "history")


@pytest.mark.parametrize("change, feature", SHIFTS)
def test_clear_shifts_are_flagged_on_200_trip_spans(spans, schema, change, feature):
    shifted = [dict(row) for row in spans[15]]
    for row in shifted:
        change(row)
    assert len(shifted) < 200
    findings = calibrated_findings(_samples(spans[12:15] + [shifted], schema), schema)
    assert feature in _flagged(findings)
    assert _flagged(findings) <= {feature, "company"}, "nothing else but span 16's own company"


@pytest.mark.parametrize("change, feature", SHIFTS)
def test_clear_shifts_are_flagged_on_large_spans(spans, schema, change, feature):
    large = [_large(rows, 2000, seed) for seed, rows in enumerate(spans[12:15])]
    newest = _large(spans[15], 20_000, 99)
    unchanged = calibrated_findings(_samples(large + [newest], schema), schema)
    for row in newest:
        change(row)
    findings = calibrated_findings(_samples(large + [newest], schema), schema)
    assert feature in _flagged(findings) - _flagged(unchanged)
    by_label = {f.label: f for f in findings}
    # Large samples: the test's critical value is small; the floor and history decide.
    assert by_label[feature].test_threshold < 0.1 and by_label[feature].score > 0.3


def test_a_schema_override_is_used_as_is(spans, schema):
    overridden = type(schema)()
    overridden.CopyFrom(schema)
    company = next(f for f in overridden.feature if f.name == "company")
    company.annotation.tag.append(OVERRIDE_TAG)
    company.drift_comparator.infinity_norm.threshold = 0.05
    samples = _samples(spans[12:16], schema)
    findings = {f.label: f for f in calibrated_findings(samples, overridden)}
    assert findings["company"].source == "override" and findings["company"].threshold == 0.05
    assert findings["company"].crossed
    assert findings["payment_type"].source != "override"


def test_scores_and_critical_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    assert ks_distance(a, a) == 0
    assert ks_distance(a, a + 10) == 1
    # The critical value shrinks with the sample sizes like sqrt(1/n + 1/m).
    small, large = (critical_value("kolmogorov_smirnov", n, 3000, 0.01) for n in (200, 20000))
    assert small / large == pytest.approx(np.sqrt((1 / 200 + 1 / 3000) / (1 / 20000 + 1 / 3000)))


def test_a_schema_without_drift_comparators_is_refused():
    empty = text_format.Parse('feature { name: "x" type: INT }', type(read_schema())())
    with pytest.raises(DriftError, match="sets no drift_comparator"):
        compared_features(empty)
    with pytest.raises(DriftError, match="at least one earlier span"):
        calibrated_findings([], read_schema())
