"""The command line starts without the heavy libraries: its parser (every command's flags, what
`ctpipe --help` and a mistyped flag need) imports none of them; each handler imports what its
command needs when it runs."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "tfx", "tensorflow_data_validation", "tensorflow_model_analysis",
         "apache_beam", "mlflow", "kfp", "ml_metadata", "numpy", "pandas", "pyarrow")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_the_parser_of_every_command_loads_no_heavy_library():
    assert loaded_after("from ctpipe import cli\ncli.build_parser()") == []


def test_the_report_and_lineage_readers_load_no_tensorflow():
    """`ctpipe report` and `ctpipe lineage` read ML Metadata and JSON files in seconds."""
    loaded = loaded_after("import ctpipe.reporting.page, ctpipe.reporting.lineage")
    assert not {"tensorflow", "tfx", "tensorflow_data_validation", "apache_beam"} & set(loaded)


def test_the_check_sees_a_heavy_import():
    assert "numpy" in loaded_after("import numpy")
