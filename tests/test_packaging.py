"""The wheel as a user installs it: one top-level import name, `ctpipe`, holding every package
folder of the checkout, and none of the folders' own names."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(REPO)],
                   check=True, cwd=out)
    (path,) = out.glob("ctpipe-*.whl")
    return path


def test_the_wheel_has_one_top_level_name_and_every_folder_under_it(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["ctpipe"]
    roots = {name.split("/")[0] for name in names
             if not name.split("/")[0].endswith(".dist-info")}
    assert roots == {"ctpipe"}
    folders = {path.parent.name for path in REPO.glob("*/__init__.py")}
    packaged = {name.split("/")[1] for name in names
                if name.startswith("ctpipe/") and name.count("/") == 2
                and name.endswith("/__init__.py")}
    assert packaged == folders - {"tests", "bench", "containers", "ctpipe"} | {"commands"}
    assert "ctpipe/schemas/schema.pbtxt" in names
    assert "ctpipe/models/trainer.py" in names
    # The report's style and drawing script, read beside ctpipe.reporting.page.document.
    assert {"ctpipe/reporting/page/page.js", "ctpipe/reporting/page/page.css"} <= set(names)


def test_installed_in_an_empty_venv_it_adds_ctpipe_alone(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    before = {p.name for p in site.iterdir()}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", str(wheel)], check=True, cwd=tmp_path)
    added = {p.name for p in site.iterdir()} - before
    assert {name for name in added if not name.endswith(".dist-info")} == {"ctpipe"}

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True,
                              text=True)

    for name in ("models", "pipeline", "common", "serving"):
        result = run(f"import {name}")
        assert result.returncode == 1 and f"No module named '{name}'" in result.stderr
    # The ground floor needs nothing beyond the standard library.
    assert run("import ctpipe.common.errors").returncode == 0
