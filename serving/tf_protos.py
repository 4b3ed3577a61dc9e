"""TF Serving's and TensorFlow's generated protos, without running `tensorflow/__init__.py`.

`tensorflow_serving.apis.predict_pb2` imports `tensorflow.core.framework.tensor_pb2`; importing
any `tensorflow.*` module first executes the `tensorflow` package, which loads the whole runtime
(about 9 s of CPU here). The generated modules only need their descriptors, and
`tensorflow/core/**/__init__.py` are empty, so while TensorFlow is not loaded they are imported
under a bare placeholder for the `tensorflow` package that is removed again afterwards: a later
`import tensorflow` then runs the real package as usual and reuses the already loaded protos.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from typing import Iterator


@contextlib.contextmanager
def _tensorflow_placeholder() -> Iterator[None]:
    if "tensorflow" in sys.modules:
        yield
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the tensorflow package (its generated protos) is not installed")
    placeholder = types.ModuleType("tensorflow")
    placeholder.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = placeholder
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]


def load(*module_names: str) -> tuple[types.ModuleType, ...]:
    """Imports generated `*_pb2` / `*_pb2_grpc` modules by name, TensorFlow not loaded."""
    with _tensorflow_placeholder():
        return tuple(importlib.import_module(name) for name in module_names)
