"""A driver that records what a step will read outside the artifact store, for the cache key.

TFX's cache key covers a step's parameters and input artifacts. Two steps read state that
lives elsewhere (the data folder, the serving folder), so with unchanged parameters a cached
result would be reused after that state changed. LocalDagRunner runs a component's custom
driver before it consults the cache; this one writes a description of the outside state into
the `snapshot` parameter, so the cache is used exactly when nothing changed. TFX's ExampleGen
does the same for its input spans. Kubeflow runs no custom drivers: there the executors compute
the snapshot themselves and the compiled pipeline does not cache these steps.
"""
from __future__ import annotations

import abc
from typing import Any

from tfx.dsl.components.base import base_driver
from tfx.orchestration import metadata
from tfx.orchestration.portable import base_driver as portable_base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

SNAPSHOT_KEY = "snapshot"


class SnapshotDriver(base_driver.BaseDriver, portable_base_driver.BaseDriver, abc.ABC):
    """Sets the `snapshot` execution parameter to `snapshot(...)`. (TFX requires a component's
    driver to derive from its legacy BaseDriver too; only the portable `run` is used.)"""

    def __init__(self, metadata_handle: metadata.Metadata):
        base_driver.BaseDriver.__init__(self, metadata_handle)
        portable_base_driver.BaseDriver.__init__(self, metadata_handle)

    @abc.abstractmethod
    def snapshot(self, input_dict: dict[str, list[Any]], exec_properties: dict[str, Any]) -> str:
        """A stable description of the outside state the executor will read."""

    def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        result = driver_output_pb2.DriverOutput()
        result.exec_properties[SNAPSHOT_KEY].string_value = self.snapshot(
            execution_info.input_dict, execution_info.exec_properties)
        return result
