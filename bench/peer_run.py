"""Runs TFX's own taxi_pipeline_native_keras pipeline with LocalDagRunner (the bench's peer).

Usage: python -m bench.peer_run DATA_ROOT WORK_DIR BEAM_ARG...
"""
from __future__ import annotations

import os
import sys

from tfx import v1 as tfx
from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as peer


def main(data_root: str, work_dir: str, beam_args: list[str]) -> None:
    module_file = os.path.join(os.path.dirname(peer.__file__), "taxi_utils_native_keras.py")
    pipeline = peer._create_pipeline(  # pylint: disable=protected-access
        pipeline_name="peer_taxi_native_keras",
        pipeline_root=os.path.join(work_dir, "pipeline_root"),
        data_root=data_root,
        module_file=module_file,
        serving_model_dir=os.path.join(work_dir, "serving"),
        metadata_path=os.path.join(work_dir, "metadata.sqlite"),
        beam_pipeline_args=beam_args,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
