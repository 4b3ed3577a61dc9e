"""What `ctpipe report` reads from a workspace without a pipeline run: the distributions made
from statistics, and the error a user sees without a metadata store.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from ctpipe.common import properties
from ctpipe.reporting import contents


def _numeric(name: str, buckets: list[tuple[float, float, int]]):
    feature = statistics_pb2.FeatureNameStatistics(type=statistics_pb2.FeatureNameStatistics.FLOAT)
    feature.path.step.append(name)
    values = sum(count for _, _, count in buckets)
    feature.num_stats.common_stats.num_non_missing = values
    feature.num_stats.common_stats.tot_num_values = values
    histogram = feature.num_stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    for low, high, count in buckets:
        histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    return feature


def _categorical(name: str, counts: dict[str, int]):
    feature = statistics_pb2.FeatureNameStatistics(type=statistics_pb2.FeatureNameStatistics.STRING)
    feature.path.step.append(name)
    feature.string_stats.common_stats.num_non_missing = sum(counts.values())
    feature.string_stats.common_stats.tot_num_values = sum(counts.values())
    for rank, (label, count) in enumerate(counts.items()):
        feature.string_stats.rank_histogram.buckets.add(low_rank=rank, high_rank=rank,
                                                        label=label, sample_count=count)
    return feature


def _statistics_artifact(folder: Path, rows: int, features) -> metadata_store_pb2.Artifact:
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = statistics.datasets.add(num_examples=rows)
    dataset.features.extend(features)
    target = folder / f"Split-{properties.SAMPLE_SPLIT}" / properties.STATISTICS_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(statistics.SerializeToString())
    return metadata_store_pb2.Artifact(uri=str(folder))


def test_distributions_share_one_axis_and_say_what_they_leave_out(tmp_path):
    even = [(i, i + 1, 10) for i in range(10)]  # 100 values spread over 0..10
    tail = [(i, i + 1, 10) for i in range(9)] + [(9, 1000, 10)]  # the top tenth up to 1000
    many = {f"company {i:02d}": 3 if i < 10 else 1 for i in range(30)}  # in half of the rows
    reference = _statistics_artifact(tmp_path / "reference", 100, [
        _numeric("fare", even), _numeric("trip_miles", even),
        _categorical("payment_type", {"Cash": 70, "Credit Card": 30}),
        _categorical("company", many)])
    newest = _statistics_artifact(tmp_path / "newest", 100, [
        _numeric("fare", tail), _categorical("trip_miles", {"ten": 100}),
        _categorical("payment_type", {"Cash": 40, "Credit Card": 50, "Mobile": 10}),
        _categorical("company", many)])

    by_name = {d.feature: d for d in contents.distributions(newest, reference)}
    fare = by_name["fare"]
    assert fare.kind == "numeric" and (fare.bins[0], fare.bins[-1]) == (0, 10), \
        "the newest span's long tail is cut at its 90th percentile, the reference ends at 10"
    assert len(fare.bins) == contents.HISTOGRAM_BINS + 1
    assert fare.newest.beyond == pytest.approx(0.1 * 990 / 991)
    for side in (fare.newest, fare.reference):
        assert sum(side.shares) + side.beyond == pytest.approx(1.0)
    assert fare.reference.beyond == 0 and max(fare.reference.shares) == pytest.approx(0.05)

    miles = by_name["trip_miles"]
    assert miles.reference is None and miles.newest.shares == [1.0]
    assert miles.note == "not comparable: numbers in the reference, strings in the newest span"

    payment = by_name["payment_type"]
    assert payment.bins == ["Cash", "Credit Card", "Mobile"], "by the larger share of either side"
    assert payment.newest.shares == [0.4, 0.5, 0.1] and payment.reference.shares == [0.7, 0.3, 0]

    company = by_name["company"]
    assert company.bins == [f"company {i:02d}" for i in range(contents.TOP_CATEGORIES)]
    assert company.newest.with_value == 0.5
    assert company.newest.beyond == pytest.approx(1 - 10 * 0.06 - 2 * 0.02), "the other values"
