"""The big-tipper model: Keras model, training and export; free of orchestration."""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Sequence

from ctpipe import common

PACKAGE_DIR = Path(__file__).parent
GROUND_FLOOR_DIR = Path(common.__file__).parent


def model_sources(package_dir: Path = PACKAGE_DIR,
                  ground_floor_dir: Path = GROUND_FLOOR_DIR) -> list[Path]:
    """The files whose content is the model's code: this package and the modules of the
    ground floor it imports (the feature contract, the window manifest, settings)."""
    own = sorted(package_dir.rglob("*.py"))
    imported = set()
    for path in own:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module == common.__name__:
                imported.update(alias.name for alias in node.names)
            elif node.module.startswith(f"{common.__name__}."):
                imported.add(node.module.split(".")[2])
    return own + sorted(ground_floor_dir / f"{name}.py" for name in imported
                        if (ground_floor_dir / f"{name}.py").is_file())


def code_version(sources: Sequence[Path] | None = None) -> str:
    """Hash of the model's code: put into the Trainer's parameters so that editing it
    invalidates a cached Trainer (a dotted run_fn path is not hashed by TFX)."""
    digest = hashlib.sha256()
    for path in model_sources() if sources is None else sources:
        # models/ and common/ stand side by side, in a checkout and installed.
        digest.update(path.relative_to(path.parents[1]).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
