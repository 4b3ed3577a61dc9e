"""The ingestion steps' Beam jobs on runners beyond one in-process worker: Beam's multi-process
runner, and Beam's own DaskRunner against a local dask.distributed cluster of worker processes.

Dataflow, Flink and Spark need services or job-server jars that cannot be fetched here; their
configurations are in deploy/ (README "Beyond one machine")."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from distributed import LocalCluster
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from ctpipe.components.example_gen.component import input_config
from ctpipe.components.example_gen.executor import Executor as ExampleGen
from ctpipe.components.statistics_gen.executor import Executor as StatisticsGen
from ctpipe.dataprep import spans as data
from ctpipe.pipeline.config import LOCAL_BEAM_ARGS

MULTI_PROCESS_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                      "--direct_num_workers=2"]
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.fixture(scope="module")
def spans(tmp_path_factory, small_source) -> Path:
    root = tmp_path_factory.mktemp("runners") / "spans"
    data.prepare(root, small_source)
    return root


def _ingest(spans: Path, work: Path, beam_args: list[str]):
    examples = standard_artifacts.Examples()
    examples.uri = str(work / "examples")
    ExampleGen(ExampleGen.Context(beam_pipeline_args=beam_args, tmp_dir=str(work / "tmp"),
                                  unique_id="1")).Do({}, {"examples": [examples]}, {
        "input_base": str(spans),
        "input_config": proto_utils.proto_to_json(input_config("csv")),
        "requested_span": 3, "file_format": "csv"})
    return examples


def _profile(examples, work: Path, beam_args: list[str]):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(work / "statistics")
    StatisticsGen(StatisticsGen.Context(beam_pipeline_args=beam_args,
                                        tmp_dir=str(work / "tmp-statistics"),
                                        unique_id="1")).Do(
        {"examples": [examples]}, {"statistics": [statistics]}, {})
    return tfdv.load_stats_binary(str(work / "statistics" / "Split-train" / "FeatureStats.pb"))


def _rows(examples) -> tuple[int, int]:
    return (examples.get_int_custom_property("rows_train"),
            examples.get_int_custom_property("rows_eval"))


def test_multi_process_workers_give_what_one_in_process_worker_gives(tmp_path, spans):
    local = _ingest(spans, tmp_path / "local", list(LOCAL_BEAM_ARGS))
    spread = _ingest(spans, tmp_path / "spread", MULTI_PROCESS_ARGS)
    assert _rows(spread) == _rows(local) and sum(_rows(local)) > 0
    statistics = _profile(spread, tmp_path / "spread", MULTI_PROCESS_ARGS)
    assert statistics.datasets[0].num_examples == _rows(local)[0]


@pytest.fixture()
def dask_cluster():

    # Loopback only: the scheduler and both workers listen on 127.0.0.1.
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    yield [f"--runner={DASK_RUNNER}", f"--dask_client_address={cluster.scheduler_address}"]
    cluster.close()


def test_example_gen_runs_on_beams_dask_runner(tmp_path, spans, dask_cluster):
    local = _ingest(spans, tmp_path / "local", list(LOCAL_BEAM_ARGS))
    on_dask = _ingest(spans, tmp_path / "dask", dask_cluster)
    assert _rows(on_dask) == _rows(local)


@pytest.mark.xfail(strict=True, raises=Exception, reason=(
    "Beam 2.72's DaskRunner runs a lifted CombinePerKey's merge on un-tagged values "
    "(`is_accumulator, value = element`: too many values to unpack); TFDV's statistics "
    "combiners use it. Strict: this test fails once a Beam upgrade fixes it."))
def test_statistics_gen_on_beams_dask_runner(tmp_path, spans, dask_cluster):
    examples = _ingest(spans, tmp_path / "local", list(LOCAL_BEAM_ARGS))
    _profile(examples, tmp_path / "dask", dask_cluster)
