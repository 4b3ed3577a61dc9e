"""The serving tests' real SavedModels (our model fitted briefly, one answering constants)."""
from tests.serving.conftest import (constant_model_dir, saved_model_dir,  # noqa: F401
                                    serialized_examples, trained_model)
