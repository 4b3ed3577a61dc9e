"""Drift on the bundled taxi trips: which reference a new span is compared with, how noisy small
spans are, and how many real quarters the schema's thresholds flag (written up in docs/drift.md).

    python -m bench.drift [--draws 40] [--reference-draws 8] [--large-draws 3] [--seed 0]

Every span (a quarter of `ctpipe data prepare`) is reduced to its `train` split, the 4 of 5
hash buckets of each serialized tf.Example that ExampleGen keeps for training, because that is
the split ctpipe.validation.drift compares. Statistics are TFDV's, computed with the curated schema.

- Real transitions: span N (2..16) against (a) span N-1 and (b) spans 1..N-1 pooled.
- No-shift noise: bootstrap samples of span N's size drawn from the reference's own rows,
  against (b) those rows, or (a) a second sample of span N-1's size from span N-1. Nothing
  shifted, so every distance is sampling noise; it matters most for the ~170-row 2016 spans.
- Thresholds: the rule of docs/drift.md applied to that noise, next to the schema's values.
- Clear shifts: span 16 with fare x 3, with every Cash trip paid by Credit Card, and with
  company emptied in 9 of 10 rows: what the thresholds must catch.
- False alarms: real transitions that the schema's thresholds flag.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import math
import random
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from google.protobuf import text_format
from tensorflow.core.example import example_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from bench import RESULTS_DIR, machine, report
from ctpipe.dataprep import spans as data
from ctpipe.validation.drift import (
    drift_findings,
    format_finding,
    skew_findings,
    statistics_of_examples,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "schema.pbtxt"
# ExampleGen's split (pipeline/pipeline.py): hash buckets 0-3 of 5 are `train`.
TRAIN_BUCKETS, HASH_BUCKETS = 4, 5
SMALL_SPAN_ROWS = 500  # the 2016 spans have ~170 train rows, the others 700-1,100
NOT_SERVED = ("big_tipper", "tips")  # serving requests carry neither (schema: not in SERVING)
REFERENCES = {"a": "span N-1", "b": "spans 1..N-1 pooled"}
# The threshold rule: this percentile of the no-shift distances at 2016 sizes, times MARGIN.
RULE_PERCENTILE, MARGIN = 0.99, 1.2

Row = Mapping[str, str]
Statistics = object  # a DatasetFeatureStatisticsList (imported lazily: TFDV is slow to import)
Key = tuple[str, bool]  # (feature, presence measure?)
Distances = dict[Key, float]


def read_schema(path: Path = SCHEMA):
    return text_format.Parse(path.read_text(), schema_pb2.Schema())


def serialized_examples(rows: Iterable[Row], schema, serving: bool = False) -> list[bytes]:
    """CSV rows as tf.Examples typed by the schema. Training rows as CsvExampleGen writes them
    (an empty cell is an empty value list); serving rows as ctpipe.serving.client sends them (empty
    cells, the label and tips left out)."""
    types = {f.name: f.type for f in schema.feature}
    result = []
    for row in rows:
        example = example_pb2.Example()
        for name, value in row.items():
            if name not in types:
                raise ValueError(f"column '{name}' is not in the schema")
            if serving and (value == "" or name in NOT_SERVED):
                continue
            target = example.features.feature[name]
            if types[name] == schema_pb2.INT:
                target.int64_list.value.extend([int(value)] if value else [])
            elif types[name] == schema_pb2.FLOAT:
                target.float_list.value.extend([float(value)] if value else [])
            else:
                target.bytes_list.value.extend([value.encode()] if value else [])
        result.append(example.SerializeToString(deterministic=True))
    return result


def statistics_of(rows: Sequence[Row], schema, serving: bool = False) -> Statistics:
    return statistics_of_examples(serialized_examples(rows, schema, serving), schema)


def train_rows(rows: Sequence[Row], schema) -> list[Row]:
    """The rows ExampleGen's hash split would put into `train`."""
    return [row for row, example in zip(rows, serialized_examples(rows, schema))
            if int(hashlib.sha256(example).hexdigest(), 16) % HASH_BUCKETS < TRAIN_BUCKETS]


def quarters() -> list[tuple[str, list[dict[str, str]]]]:
    """The bundled trips split as `ctpipe data prepare` does: (quarter, labelled rows)."""
    with data.bundled_source().open(newline="") as handle:
        return data.split_into_spans(list(csv.DictReader(handle)))


def distances(statistics: Statistics, reference: Statistics, schema) -> tuple[Distances, list]:
    """Every distance ctpipe.validation.drift measures, and its crossed findings."""
    findings = drift_findings({"train": statistics}, {"train": reference}, schema)
    return ({(f.feature, f.presence is not None): f.distance for f in findings},
            [f for f in findings if f.crossed])


@dataclasses.dataclass(frozen=True)
class Spans:
    """The quarters' train splits, their statistics, and the pooled spans before each."""

    quarter: dict[int, str]
    rows: dict[int, list[Row]]
    stats: dict[int, Statistics]
    pooled_rows: dict[int, list[Row]]  # spans 1..N-1, for N >= 2
    pooled: dict[int, Statistics]

    @property
    def transitions(self) -> range:
        return range(2, len(self.rows) + 1)

    def reference(self, ref: str, n: int) -> Statistics:
        return self.stats[n - 1] if ref == "a" else self.pooled[n]

    def small(self, n: int) -> bool:
        return len(self.rows[n]) < SMALL_SPAN_ROWS


def load_spans(schema) -> Spans:
    found = [(quarter, train_rows(rows, schema)) for quarter, rows in quarters()]
    quarter = {n: name for n, (name, _) in enumerate(found, start=1)}
    rows = {n: span_rows for n, (_, span_rows) in enumerate(found, start=1)}
    pooled_rows = {n: [row for m in range(1, n) for row in rows[m]]
                   for n in range(2, len(rows) + 1)}
    return Spans(quarter, rows, {n: statistics_of(r, schema) for n, r in rows.items()},
                 pooled_rows, {n: statistics_of(r, schema) for n, r in pooled_rows.items()})


@dataclasses.dataclass(frozen=True)
class Draw:
    """One no-shift comparison: the two statistics and what ctpipe.validation.drift measured."""

    statistics: Statistics
    reference: Statistics
    distances: Distances
    crossed: list


def no_shift_draws(spans: Spans, schema, draws: int, reference_draws: int, large_draws: int,
                   seed: int) -> dict[tuple[str, bool], list[Draw]]:
    """(reference, 2016 span?) -> bootstrap comparisons in which nothing shifted: (b) a sample
    of span N's size from spans 1..N-1 vs those spans; (a) samples of span N's and span N-1's
    sizes, both from span N-1, vs each other (2016 spans only, to compare the references)."""
    rng = random.Random(seed)
    result: dict[tuple[str, bool], list[Draw]] = {("a", True): [], ("b", True): [],
                                                  ("b", False): []}

    def draw(key: tuple[str, bool], statistics: Statistics, reference: Statistics) -> None:
        result[key].append(Draw(statistics, reference, *distances(statistics, reference, schema)))

    for n in spans.transitions:
        small, size, previous = spans.small(n), len(spans.rows[n]), spans.rows[n - 1]
        for _ in range(draws if small else large_draws):
            draw(("b", small), statistics_of(rng.choices(spans.pooled_rows[n], k=size), schema),
                 spans.pooled[n])
        for _ in range(reference_draws if small else 0):
            draw(("a", True), statistics_of(rng.choices(previous, k=size), schema),
                 statistics_of(rng.choices(previous, k=len(previous)), schema))
    return result


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rule_threshold(*noise: Sequence[float]) -> float:
    """docs/drift.md's rule: the 99th percentile of no-shift distances at 2016 sizes, of the
    feature's values or its presence, whichever is higher, plus a fifth, rounded up to 0.01."""
    highest = max(percentile(distances, RULE_PERCENTILE) for distances in noise)
    return math.ceil(highest * MARGIN * 100 - 1e-9) / 100


def _table(title: str, columns: Sequence[str], rows: Mapping[str, Sequence[float]]) -> None:
    print(f"\n{title}")
    width = max(map(len, rows)) + 2
    print(" " * width + " ".join(f"{c:>7}" for c in columns))
    for name, values in rows.items():
        print(f"{name:<{width}}" + " ".join(f"{v:7.3f}" for v in values))


def _label(key: Key) -> str:
    return f"{key[0]} (presence)" if key[1] else key[0]


def _schema_threshold(schema, name: str) -> float:
    comparator = next(f for f in schema.feature if f.name == name).drift_comparator
    return (comparator.infinity_norm.threshold if comparator.HasField("infinity_norm")
            else comparator.jensen_shannon_divergence.threshold)


def _with_histograms(schema, histogram: int):
    """The schema with every Jensen-Shannon comparator reading `histogram` (HistogramSelection)."""
    variant = type(schema)()
    variant.CopyFrom(schema)
    for feature in variant.feature:
        for comparator in (feature.drift_comparator, feature.skew_comparator):
            if comparator.HasField("jensen_shannon_divergence"):
                comparator.jensen_shannon_divergence.source.type = histogram
    return variant


def _over(measured: Distances, thresholds: Mapping[str, float]) -> list[str]:
    return [f"{_label(key)} {distance:.3f} > {thresholds[key[0]]}"
            for key, distance in measured.items() if distance > thresholds[key[0]]]


def _describe(finding) -> str:
    return (f"{finding.feature}{' (presence)' if finding.presence else ''} "
            f"{finding.distance:.3f} > {finding.threshold}")


def _shifted(rows: Sequence[Row], change: Callable[[int, dict[str, str]], None]) -> list[Row]:
    result = []
    for index, row in enumerate(rows):
        copy = dict(row)
        change(index, copy)
        result.append(copy)
    return result


def _scale_fare(_: int, row: dict[str, str]) -> None:
    row["fare"] = f"{float(row['fare']) * 3:.2f}"


def _cash_to_card(_: int, row: dict[str, str]) -> None:
    if row["payment_type"] == "Cash":
        row["payment_type"] = "Credit Card"


def _empty_company(index: int, row: dict[str, str]) -> None:
    if index % 10:
        row["company"] = ""


# feature -> (what changed, the change); the measure that must cross is the feature's own.
CLEAR_SHIFTS: dict[Key, tuple[str, Callable[[int, dict[str, str]], None]]] = {
    ("fare", False): ("fare x 3", _scale_fare),
    ("payment_type", False): ("every Cash trip paid by Credit Card", _cash_to_card),
    ("company", True): ("company empty in 9 of 10 rows", _empty_company),
}


def bench_drift(draws: int = 40, reference_draws: int = 8, large_draws: int = 3,
                seed: int = 0) -> dict[str, float]:
    started = time.perf_counter()
    schema = read_schema()
    spans = load_spans(schema)
    transitions, last = spans.transitions, max(spans.rows)
    print("spans (quarter: train split rows): " + ", ".join(
        f"{n}={spans.quarter[n]}:{len(rows)}" for n, rows in spans.rows.items()))

    real = {ref: {n: distances(spans.stats[n], spans.reference(ref, n), schema)[0]
                  for n in transitions} for ref in REFERENCES}
    noise = no_shift_draws(spans, schema, draws, reference_draws, large_draws, seed)

    def spread(ref: str, small: bool, key: Key) -> list[float]:
        return [d.distances[key] for d in noise[(ref, small)]]

    compared = [f.name for f in schema.feature if f.HasField("drift_comparator")]
    # Presence rows only for features that have empty cells somewhere.
    keys = [(name, False) for name in compared] + [
        (name, True) for name in compared
        if max(real["b"][n][(name, True)] for n in transitions) > 0]
    for ref, title in REFERENCES.items():
        _table(f"distance of span N vs ({ref}) {title}; N =", [str(n) for n in transitions],
               {_label(k): [real[ref][n][k] for n in transitions] for k in keys})
    _table(f"no-shift distances at 2016 sizes ({draws} (b) and {reference_draws} (a) draws per "
           f"span; 2013-15: {large_draws} per span) and the largest real distance",
           ["a:p95", "b:p95", "b:p99", "b:13-15", "a:real", "b:real"],
           {_label(k): [percentile(spread("a", True, k), 0.95),
                        percentile(spread("b", True, k), 0.95),
                        percentile(spread("b", True, k), 0.99),
                        max(spread("b", False, k)),
                        max(real["a"][n][k] for n in transitions),
                        max(real["b"][n][k] for n in transitions)] for k in keys})

    rule = {ref: {name: rule_threshold(spread(ref, True, (name, False)),
                                       spread(ref, True, (name, True)))
                  for name in compared} for ref in REFERENCES}
    in_schema = {name: _schema_threshold(schema, name) for name in compared}
    _table("thresholds: the rule (p99 of no-shift distances at 2016 sizes x 1.2; (a) from fewer "
           "draws) and the schema's", ["a:rule", "b:rule", "schema"],
           {name: [rule["a"][name], rule["b"][name], in_schema[name]] for name in compared})

    numeric = [f.name for f in schema.feature
               if f.drift_comparator.HasField("jensen_shannon_divergence")]
    by_histogram = {}
    for histogram in ("QUANTILES", "STANDARD"):
        variant = _with_histograms(schema, schema_pb2.HistogramSelection.Type.Value(histogram))
        by_histogram[histogram] = (
            [distances(d.statistics, d.reference, variant)[0] for d in noise[("b", True)]],
            [distances(spans.stats[n], spans.pooled[n], variant)[0] for n in transitions])
    _table("jensen_shannon_divergence by histogram, (b): p99 of no-shift distances at 2016 "
           "sizes, largest real distance", ["Q:p99", "Q:real", "S:p99", "S:real"],
           {name: [percentile([d[(name, False)] for d in by_histogram[h][0]], 0.99)
                   if index == 0 else max(d[(name, False)] for d in by_histogram[h][1])
                   for h in ("QUANTILES", "STANDARD") for index in (0, 1)]
            for name in numeric})

    print(f"\nclear shifts on span {last} ({spans.quarter[last]}, {len(spans.rows[last])} rows): "
          "distance vs the reference / threshold")
    caught = 0
    for key, (what, change) in CLEAR_SHIFTS.items():
        shifted = statistics_of(_shifted(spans.rows[last], change), schema)
        cells = []
        for ref in REFERENCES:
            measured, crossed = distances(shifted, spans.reference(ref, last), schema)
            cells.append(f"({ref}) {measured[key]:.3f} / rule {rule[ref][key[0]]}")
        named = any((f.feature, f.presence is not None) == key for f in crossed)
        caught += named
        print(f"  {what:<36} {_label(key)}: {', '.join(cells)}, schema {in_schema[key[0]]}: "
              + ("flagged" if named else "NOT flagged"))

    serving = statistics_of(spans.rows[last], schema, serving=True)
    skew = [f for f in skew_findings(serving, {"train": spans.pooled[last]}, schema) if f.crossed]
    print(f"\nskew: span {last} sent as serving requests (empty cells left out) vs training "
          f"spans 1..{last - 1}: {len(skew)} crossed"
          + "".join(f"\n  {format_finding(f)}" for f in skew))

    print()
    for ref, title in REFERENCES.items():
        flagged = {n: _over(real[ref][n], rule[ref]) for n in transitions}
        listed = "".join(f"; {n}: {', '.join(lines)}" for n, lines in flagged.items() if lines)
        no_shift = sum(bool(_over(d.distances, rule[ref])) for d in noise[(ref, True)])
        print(f"({ref}) {title}, its rule's thresholds: real transitions flagged "
              f"{sum(map(bool, flagged.values()))} of {len(transitions)}{listed}; no-shift 2016 "
              f"draws flagged {no_shift} of {len(noise[(ref, True)])}")

    flagged = {n: distances(spans.stats[n], spans.pooled[n], schema)[1] for n in transitions}
    flagged = {n: crossed for n, crossed in flagged.items() if crossed}
    no_shift = sum(bool(d.crossed) for d in noise[("b", True)])
    print(f"\nreference (b) spans 1..N-1 pooled with the schema's thresholds: no-shift 2016 draws "
          f"flagged {no_shift} of {len(noise[('b', True)])}; clear shifts flagged {caught} of "
          f"{len(CLEAR_SHIFTS)}")
    print(f"false alarms: {len(flagged)} of {len(transitions)} transitions flagged"
          + (": " if flagged else "")
          + "; ".join(f"span {n} ({spans.quarter[n]}): "
                      + ", ".join(map(_describe, crossed)) for n, crossed in flagged.items()))
    return {
        "drift_false_alarms_count": len(flagged),
        "drift_transitions_count": len(transitions),
        "drift_no_shift_2016_flagged_fraction": round(no_shift / len(noise[("b", True)]), 3),
        "drift_clear_shifts_flagged_count": caught,
        "drift_clear_shifts_count": len(CLEAR_SHIFTS),
        "drift_bench_wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=40,
                        help="no-shift draws per 2016 span against the pooled spans (b)")
    parser.add_argument("--reference-draws", type=int, default=8,
                        help="no-shift draws per 2016 span against the previous span (a)")
    parser.add_argument("--large-draws", type=int, default=3,
                        help="no-shift draws per 2013-2015 span (b)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS_DIR / "drift.json"))
    args = parser.parse_args()
    started = machine()
    report("drift", bench_drift(args.draws, args.reference_draws, args.large_draws, args.seed),
           args.out, started)


if __name__ == "__main__":
    main()
