"""Build step: writes the FileDescriptorSet of TF Serving's protos that the client loads.

    python -m ctpipe.serving.client.generate_protos        (run by `make venv` and the Dockerfile)

Imports the real generated modules of tensorflow-serving-api once (this loads TensorFlow, about
10 s) and writes, dependencies first, the FileDescriptorProtos of the files the client uses and
every file they import, to `serving/client/tf_serving_protos.binpb`. The file is derived from
the installed packages, so it is not committed (.gitignore) and is rebuilt with them.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from google.protobuf import descriptor, descriptor_pb2

from ctpipe.common.files import write_atomically

DESCRIPTOR_SET = Path(__file__).with_name("tf_serving_protos.binpb")

# The generated modules whose messages the client uses; their imports come along.
ROOT_MODULES = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.model_management_pb2",
    "tensorflow_serving.apis.prediction_log_pb2",
    "tensorflow.core.example.example_pb2",
)


def descriptor_set(module_names: tuple[str, ...] = ROOT_MODULES
                   ) -> descriptor_pb2.FileDescriptorSet:
    """The files of `module_names` and all their dependencies, each after its dependencies
    (the order a DescriptorPool needs to add them)."""
    ordered: list[descriptor.FileDescriptor] = []
    seen: set[str] = set()

    def visit(file: descriptor.FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        ordered.append(file)

    for name in module_names:
        visit(importlib.import_module(name).DESCRIPTOR)
    files = descriptor_pb2.FileDescriptorSet()
    for file in ordered:
        file.CopyToProto(files.file.add())
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DESCRIPTOR_SET)
    args = parser.parse_args()
    files = descriptor_set()
    write_atomically(args.out, files.SerializeToString())
    print(f"wrote {len(files.file)} proto files to {args.out}")


if __name__ == "__main__":
    main()
