"""TF Serving's and TensorFlow's generated protos, without running `tensorflow/__init__.py`.

`tensorflow_serving.apis.predict_pb2` imports `tensorflow.core.framework.tensor_pb2`; importing
any `tensorflow.*` module first executes the `tensorflow` package, which loads the whole runtime
(about 9 s of CPU here). The generated modules only need their descriptors, and
`tensorflow/core/**/__init__.py` are empty, so while TensorFlow is not loaded they are imported
under a bare placeholder for the `tensorflow` package that is removed again afterwards: a later
`import tensorflow` then runs the real package as usual and reuses the already loaded protos.

One order must be restored by hand: normally no `tensorflow.*` module can load before the
`tensorflow` package. A later import of another `tensorflow.*` module (say
`tensorflow_serving.apis.prediction_log_pb2` -> `tensorflow.core.protobuf.config_pb2`) would run
`tensorflow/__init__.py` in the middle of that module and fail on its half-registered
descriptors; `_TensorflowFirst` runs the package first in that case.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Iterator


class _AlreadyLoaded(importlib.abc.Loader):
    """Hands back a module that importing the `tensorflow` package has just loaded."""

    def __init__(self, module: types.ModuleType):
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self._spec


class _TensorflowFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None):
        if not fullname.startswith("tensorflow.") or "tensorflow" in sys.modules:
            return None
        importlib.import_module("tensorflow")
        module = sys.modules.get(fullname)
        if module is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AlreadyLoaded(module),
                                               is_package=hasattr(module, "__path__"))


_TENSORFLOW_FIRST = _TensorflowFirst()


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
    if _TENSORFLOW_FIRST not in sys.meta_path:
        sys.meta_path.insert(0, _TENSORFLOW_FIRST)
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]


def load(*module_names: str) -> tuple[types.ModuleType, ...]:
    """Imports generated `*_pb2` / `*_pb2_grpc` modules by name, TensorFlow not loaded."""
    with _tensorflow_placeholder():
        return tuple(importlib.import_module(name) for name in module_names)
