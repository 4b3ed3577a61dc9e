"""`ctpipe` itself: the command families it offers, how it refuses a missing or unknown
command, and that it starts without loading the heavy libraries (TensorFlow, Beam, TFX): the
commands import those when they run, so `ctpipe --help` and a mistyped flag answer at once."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.ctpipe.conftest import assert_one_line_error

REPO = Path(__file__).resolve().parents[2]
COMMAND_MODULES = sorted(p.stem for p in (REPO / "ctpipe" / "commands").glob("*.py")
                         if p.stem != "__init__")
# The commands each module registers (ctpipe/commands/<module>.py).
COMMANDS = {
    "client": ["predict", "model-status", "label", "rollback"],
    "data": ["data"], "demo": ["demo"], "gateway": ["gateway"], "gc": ["gc"],
    "kubeflow": ["compile", "submit", "schedule", "runs", "build"], "lineage": ["lineage"],
    "monitor": ["monitor"], "report": ["report"], "rollout": ["rollout"], "run": ["run"],
    "schema": ["schema"], "score": ["score"], "serve": ["serve"], "status": ["status"],
    "track": ["track"],
}
HEAVY = ("tensorflow", "tfx", "apache_beam", "tensorflow_data_validation", "kfp", "mlflow",
         "pyarrow", "grpc")


def test_help_lists_every_command_of_every_module(ctpipe):
    assert sorted(COMMANDS) == COMMAND_MODULES, "a command module this test does not know"
    shown = ctpipe("--help")
    assert shown.status == 0 and shown.err == ""
    listed = re.search(r"^positional arguments:\n  \{(.+)\}$", shown.out, re.M).group(1)
    assert sorted(listed.split(",")) == sorted(n for names in COMMANDS.values() for n in names)
    for name in listed.split(","):
        assert re.search(rf"^    {name} +\w", shown.out, re.M), f"{name} has no help line"


def test_every_command_module_has_its_test_file():
    missing = [m for m in COMMAND_MODULES
               if not (REPO / "tests" / "ctpipe" / "commands" / f"test_{m}.py").is_file()]
    assert missing == []


def test_a_missing_or_unknown_command_is_a_usage_error(ctpipe):
    assert_one_line_error(ctpipe(), "the following arguments are required: command")
    refused = ctpipe("trian", "--data", "x")
    assert refused.status == 2
    assert_one_line_error(refused, "invalid choice: 'trian'")


def test_help_starts_without_the_heavy_libraries_and_says_nothing_else():
    """The process as a user starts it: no library warning on stderr, and after the parser is
    built none of the libraries that take seconds to import is loaded."""
    shown = subprocess.run([sys.executable, "-m", "ctpipe.cli", "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.startswith("usage: ctpipe")
    code = ("import sys; from ctpipe.cli import build_parser; build_parser(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "[]"
