"""Our StatisticsGen executor against TFX's own on the same examples: the same statistics."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from ctpipe.components.example_gen.component import input_config
from ctpipe.components.example_gen.executor import Executor as ExampleGenExecutor
from ctpipe.components.statistics_gen.executor import Executor
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS


def _context(tmp_path: Path, executor_class):
    return executor_class.Context(beam_pipeline_args=list(LOCAL_BEAM_ARGS),
                                  tmp_dir=str(tmp_path / "tmp"), unique_id="1")


@pytest.fixture(scope="module")
def examples(tmp_path_factory, small_source):
    root = tmp_path_factory.mktemp("statistics")
    data.prepare(root / "spans", small_source)
    artifact = standard_artifacts.Examples()
    artifact.uri = str(root / "examples")
    ExampleGenExecutor(_context(root, ExampleGenExecutor)).Do({}, {"examples": [artifact]}, {
        "input_base": str(root / "spans"),
        "input_config": proto_utils.proto_to_json(input_config("csv")),
        "requested_span": 3, "file_format": "csv"})
    return artifact


def _statistics(tmp_path: Path, executor_class, examples, name: str):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / name)
    executor_class(_context(tmp_path / name, executor_class)).Do(
        {"examples": [examples]}, {"statistics": [statistics]}, {"exclude_splits": "[]"})
    return {split: tfdv.load_stats_binary(str(Path(statistics.uri, f"Split-{split}",
                                                   "FeatureStats.pb"))).datasets[0]
            for split in ("train", "eval")}


def _summary(dataset) -> dict[str, tuple]:
    result = {}
    for feature in dataset.features:
        name = feature.path.step[0]
        if feature.HasField("num_stats"):
            stats = feature.num_stats
            result[name] = (feature.type, stats.common_stats.num_non_missing,
                            round(stats.mean, 4), round(stats.std_dev, 4), stats.min, stats.max,
                            stats.num_zeros)
        else:
            stats = feature.string_stats
            result[name] = (feature.type, stats.common_stats.num_non_missing, stats.unique,
                            tuple((b.label, b.sample_count) for b in
                                  stats.rank_histogram.buckets[:5]))
    return result


def test_the_same_statistics_as_tfx_s_own_executor(tmp_path, examples):
    ours = _statistics(tmp_path, Executor, examples, "ours")
    theirs = _statistics(tmp_path, tfx_executor.Executor, examples, "tfx")
    for split in ("train", "eval"):
        assert ours[split].num_examples == theirs[split].num_examples > 0
        assert _summary(ours[split]) == _summary(theirs[split]), split
