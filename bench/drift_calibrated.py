"""Calibrated drift (validation/calibrated_drift.py) on the real quarters: false alarms on the
16 real spans, at their real size (~170-1,100 train rows) and replicated to large spans, and
detection of clear shifts at both sizes (written up in docs/drift.md).

    python -m bench.drift_calibrated [--draws 100] [--seed 0] [--out build/bench/drift_calibrated.json]

- Real transitions: span N (2..16) against the earlier spans of its window, as ValidationGate
  samples them: the whole window (the default `window: 0`) and a 4-span window (spans 13-16 is
  the baseline run that fixed thresholds stopped).
- Large spans: each real quarter as `ctpipe data prepare --scale` makes a 500,000-trip span of
  it (the quarter repeated, each copy's fare, tips, miles and seconds scaled by one factor
  within ±5 %), read as the gate reads a large span (the newest span's first 20,000 rows, each
  earlier span's first 2,000), built in process: only those rows are ever read.
- No-shift draws: span 16 replaced by a bootstrap sample of the earlier spans' own rows, at
  its own size: every flag is a false alarm of the test itself.
- Clear shifts on span 16, at both sizes: trip_miles x 3 (a unit change), every Cash trip paid
  by Credit Card (a category shift), the company column missing.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from bench import arguments, machine, report
from bench.drift import quarters, read_schema, serialized_examples, train_rows
from ctpipe.dataprep.scale import MAX_FACTOR_CHANGE, SCALED
from ctpipe.validation.calibrated_drift import (
    PRESENCE,
    calibrated_findings,
    compared_features,
    sample_of,
)

LARGE_TRIPS = 500_000
WINDOWS = {"all": 0, "4 spans": 4}


def _samples(spans: Sequence[list[dict[str, str]]], schema) -> list:
    kinds = {name: kind for name, (kind, _) in compared_features(schema).items()}
    return [sample_of(serialized_examples(rows, schema), kinds) for rows in spans]


def _replicated(rows: list[dict[str, str]], size: int, rng: np.random.Generator
                ) -> list[dict[str, str]]:
    """The first `size` rows of a quarter scaled to a large span as `ctpipe data prepare
    --scale` writes it (dataprep/scale.py): the quarter repeated, copy 0 as shipped, every
    other copy with fare, tips, miles and seconds multiplied by one factor of that copy
    (within ±5 %). The gate reads a large span's first rows, so this is what it sees."""
    result = []
    for copy in range(-(-size // len(rows))):
        factor = 1.0 if copy == 0 else 1 + rng.uniform(-MAX_FACTOR_CHANGE, MAX_FACTOR_CHANGE)
        for row in rows[:size - len(result)]:
            scaled = dict(row)
            for name in SCALED:
                value = scaled.get(name)
                if value:  # whole-number columns (trip_seconds) stay whole numbers
                    scaled[name] = (f"{float(value) * factor:.6f}" if "." in value
                                    else str(round(int(value) * factor)))
            result.append(scaled)
    return result


def _flagged(window: Sequence, schema) -> list[str]:
    return sorted({f"{f.feature}{' (presence)' if f.measure == PRESENCE else ''}"
                   for f in calibrated_findings(window, schema) if f.crossed})


def _transitions(samples: list, schema, window: int) -> dict[int, list[str]]:
    """Span N -> the features flagged when it arrives (N = 2..16)."""
    flagged = {}
    for newest in range(2, len(samples) + 1):
        first = 0 if not window else max(0, newest - window)
        flagged[newest] = _flagged(samples[first:newest], schema)
    return flagged


def _miles_times_3(row: dict[str, str]) -> None:
    if row["trip_miles"]:
        row["trip_miles"] = f"{float(row['trip_miles']) * 3:.4f}"


def _cash_to_card(row: dict[str, str]) -> None:
    if row["payment_type"] == "Cash":
        row["payment_type"] = "Credit Card"


def _no_company(row: dict[str, str]) -> None:
    del row["company"]


SHIFTS: dict[str, tuple[str, Callable[[dict[str, str]], None]]] = {
    "unit_change_trip_miles_x3": ("trip_miles", _miles_times_3),
    "category_shift_cash_to_card": ("payment_type", _cash_to_card),
    "missing_column_company": ("company (presence)", _no_company),
}


def bench_drift_calibrated(draws: int = 100, seed: int = 0) -> dict[str, float]:
    schema = read_schema()
    rng = np.random.default_rng(seed)
    spans = [train_rows(rows, schema) for _, rows in quarters()]
    sizes = {"real": spans,
             "large": [_replicated(rows, 20_000 if n == len(spans) - 1 else 2_000, rng)
                       for n, rows in enumerate(spans)]}
    results: dict[str, float] = {"drift_cal_spans": len(spans),
                                 "drift_cal_large_span_trips": LARGE_TRIPS}
    for size, rows in sizes.items():
        samples = _samples(rows, schema)
        for label, window in WINDOWS.items():
            flagged = _transitions(samples, schema, window)
            alarms = {n: names for n, names in flagged.items() if names}
            key = f"drift_cal_{size}_window_{window or 'all'}"
            results[f"{key}_transitions_flagged"] = len(alarms)
            results[f"{key}_transitions"] = len(flagged)
            for n, names in alarms.items():
                print(f"{size} spans, window {label}: span {n} flagged: {', '.join(names)}")
        for name, (feature, change) in SHIFTS.items():
            shifted = [dict(row) for row in rows[-1]]
            for row in shifted:
                change(row)
            caught = _flagged(samples[:-1] + _samples([shifted], schema), schema)
            results[f"drift_cal_{size}_{name}_caught"] = int(feature in caught)
            print(f"{size} spans, {name}: flagged {', '.join(caught) or 'nothing'}")
    pool = [row for rows in spans[:-1] for row in rows]
    earlier = _samples(spans[:-1], schema)
    false_alarms = 0
    for _ in range(draws):
        drawn = [pool[i] for i in rng.integers(0, len(pool), len(spans[-1]))]
        false_alarms += bool(_flagged(earlier + _samples([drawn], schema), schema))
    results["drift_cal_no_shift_draws"] = draws
    results["drift_cal_no_shift_draws_flagged"] = false_alarms
    return results


def main() -> None:
    parser = arguments(__doc__, "build/bench-drift-calibrated", "drift_calibrated")
    parser.add_argument("--draws", type=int, default=100, help="no-shift draws")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = machine()
    report("drift_calibrated", bench_drift_calibrated(args.draws, args.seed), args.out, started)


if __name__ == "__main__":
    main()
