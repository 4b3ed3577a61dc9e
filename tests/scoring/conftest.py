"""The serving tests' model answering constants (our briefly fitted model: tests/conftest.py)."""
from tests.serving.conftest import constant_model_dir  # noqa: F401
