"""The floors of the house: every project module's imports, read with `ast` (nothing is
imported), may only reach down to a lower floor or stay inside their own package, and no modules
import each other in a circle. Function-level and TYPE_CHECKING imports count too: they are
dependencies all the same."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Floor of every package, ground floor first. A package may import its own modules and those of
# packages on LOWER floors only; packages on one floor do not import each other.
FLOORS = {
    "common": 0,  # shared mechanics; imports nothing of ours
    "models": 1,  # the model: features, training, export
    "validation": 1,  # drift, skew and anomalies by TFDV
    "containers": 1,  # host tooling for the image and kfp.local
    "schemas": 2,  # the curated schema and its curation rules (models.features)
    "dataprep": 2,  # span folders from the shipped trips, of real size if asked
    "serving": 2,  # server, client, gateway, rollout (models.features)
    "tracking": 2,  # MLflow records, their delivery and the registry's aliases
    "components": 3,  # the pipeline's steps
    "pipeline": 4,  # the pipeline definition and its runners
    "monitoring": 4,  # prediction logs against what was pushed
    "retention": 4,  # ctpipe gc: what ML Metadata and the disk may forget
    "scoring": 5,  # offline scoring, also a Kubeflow pipeline of its own
    "reporting": 5,  # status and the HTML report
    "ctpipe": 6,  # the command line
    "bench": 7,  # benchmarks
}


def project_modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every Python file of the floors' packages under `root`."""
    modules = {}
    for package in FLOORS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that module `name` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports that module; `from module import name`,
            # the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` of a module outside the project (tensorflow...) is not ours.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a package to another on the same or a higher floor."""
    wrong = []
    for name, targets in sorted(graph.items()):
        package = name.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and FLOORS[other] >= FLOORS[package]:
                wrong.append(f"{name} (floor {FLOORS[package]}) imports {target} "
                             f"(floor {FLOORS[other]})")
    return wrong


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules that import each other in a loop: strongly connected components of more than
    one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_of_the_project_has_a_floor():
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages == set(FLOORS), "add the package to FLOORS (or remove it from there)"


def test_no_import_runs_back_up_a_floor():
    assert upward_imports(import_graph(REPO)) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph(REPO)) == []


def test_the_check_finds_an_upward_import_and_a_circle(tmp_path):
    files = {
        "common/__init__.py": "",
        "common/errors.py": "from models import features\n",  # up: floor 0 -> 1
        "models/__init__.py": "",
        "models/features.py": "def f():\n    from models.inputs import x\n",
        "models/inputs.py": "from . import features\n",  # a circle with features
        "validation/__init__.py": "",
        "validation/drift.py": "from models import features\n",  # same floor
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == [
        "common.errors (floor 0) imports models.features (floor 1)",
        "validation.drift (floor 1) imports models.features (floor 1)"]
    assert circles(graph) == [["models.features", "models.inputs"]]


# Host tooling and benchmarks run from a checkout; everything else is installed, in the image too.
NOT_INSTALLED = {"containers", "bench"}


def test_every_installed_package_is_packaged_and_copied_into_the_image():
    import re

    setup = (REPO / "setup.py").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) /tmp/src/\1$", dockerfile, re.M))
    import_check = dockerfile[dockerfile.index("pkgutil.walk_packages") - 400:]
    for package in set(FLOORS) - NOT_INSTALLED:
        assert f'"{package}*"' in setup, f"setup.py's packages lack {package}"
        assert package in copied, f"the Dockerfile does not copy {package}/"
        assert f"'{package}'" in import_check, f"the image's import check skips {package}"
