"""The floors of the house: every project module's imports, read with `ast` (nothing is
imported), may only reach down to a lower floor or stay inside their own package, no modules
import each other in a circle, and every import of the project goes through the one installed
namespace, `ctpipe`. Function-level and TYPE_CHECKING imports count too: they are dependencies
all the same."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "ctpipe"

# Floor of every package folder, ground floor first. A package may import its own modules and
# those of packages on LOWER floors only; packages on one floor do not import each other.
# Installed folders are imported as `ctpipe.<folder>`; `ctpipe/` itself is the command line.
FLOORS = {
    "common": 0,  # shared mechanics and the data contract; imports nothing of ours
    "models": 1,  # the model: training and export
    "validation": 1,  # drift, skew and anomalies by TFDV
    "containers": 1,  # host tooling for the image and kfp.local (not installed)
    "schemas": 2,  # the curated schema and its curation rules
    "dataprep": 2,  # span folders from the shipped trips, of real size if asked
    "serving": 2,  # server, client, gateway, rollout
    "tracking": 2,  # MLflow records, their delivery and the registry's aliases
    "components": 3,  # the pipeline's steps
    "pipeline": 4,  # the pipeline definition and its runners
    "monitoring": 4,  # prediction logs against what was pushed
    "rollout": 4,  # canary verdicts from the prediction logs and the servers' metrics
    "retention": 4,  # ctpipe gc: what ML Metadata and the disk may forget
    "scoring": 5,  # offline scoring, also a Kubeflow pipeline of its own
    "reporting": 5,  # status and the HTML report
    NAMESPACE: 6,  # the command line
    "bench": 7,  # benchmarks (not installed)
}


def packaging():
    """setup.py as a module: its discovery of the installed folders is the one list."""
    spec = importlib.util.spec_from_file_location("ctpipe_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_prefix(folder: str, installed: set[str]) -> str:
    """The dotted name a folder's modules are imported under."""
    return f"{NAMESPACE}.{folder}" if folder in installed else folder


def project_modules(root: Path, installed: set[str]) -> dict[str, tuple[str, Path]]:
    """{dotted module name: (package folder, file)} for every Python file of the floors'
    folders under `root`."""
    modules = {}
    for folder in FLOORS:
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([module_prefix(folder, installed), *parts])] = (folder, path)
    return modules


def imports_of(name: str, path: Path, modules: dict) -> tuple[set[str], set[str]]:
    """(the project modules that module `name` imports anywhere in its file, the imports that
    name an installed folder outside the `ctpipe` namespace)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found, bare = set(), set()
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
            if f"{NAMESPACE}.{target}" in modules:
                bare.add(target)
            # `import a.b.c` of a module outside the project (tensorflow...) is not ours.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found, bare


def import_graph(root: Path, installed: set[str]) -> dict[str, set[str]]:
    modules = project_modules(root, installed)
    return {name: imports_of(name, path, modules)[0] for name, (_, path) in modules.items()}


def folder_of(module: str, installed: set[str]) -> str:
    """The package folder a dotted module name belongs to."""
    parts = module.split(".")
    if parts[0] == NAMESPACE and len(parts) > 1 and parts[1] in installed:
        return parts[1]
    return parts[0]


def upward_imports(graph: dict[str, set[str]], installed: set[str]) -> list[str]:
    """Imports from a package to another on the same or a higher floor."""
    wrong = []
    for name, targets in sorted(graph.items()):
        package = folder_of(name, installed)
        for target in sorted(targets):
            other = folder_of(target, installed)
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


INSTALLED = set(packaging().folders())


def test_every_package_folder_has_a_floor():
    folders = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests"}
    assert folders == set(FLOORS), "add the package to FLOORS (or remove it from there)"


def test_setup_installs_every_floor_but_the_host_tooling_under_one_namespace():
    assert INSTALLED == set(FLOORS) - {NAMESPACE, *packaging().NOT_INSTALLED}


def test_no_import_runs_back_up_a_floor():
    assert upward_imports(import_graph(REPO, INSTALLED), INSTALLED) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph(REPO, INSTALLED)) == []


def test_every_import_of_the_project_goes_through_its_namespace():
    """`import models` would find the checkout's folder only by accident of the working
    directory: installed, the package is `ctpipe.models`. Tests count too."""
    modules = project_modules(REPO, INSTALLED)
    bare = {}
    for path in [*(path for _, path in modules.values()), *(REPO / "tests").rglob("*.py")]:
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found = imports_of(name, path, modules)[1]
        if found:
            bare[str(path.relative_to(REPO))] = sorted(found)
    assert bare == {}


def test_the_check_finds_an_upward_import_a_circle_and_a_bare_import(tmp_path):
    files = {
        "common/__init__.py": "",
        "common/errors.py": "from ctpipe.models import features\n",  # up: floor 0 -> 1
        "models/__init__.py": "",
        "models/features.py": "def f():\n    from ctpipe.models.inputs import x\n",
        "models/inputs.py": "from . import features\n",  # a circle with features
        "validation/__init__.py": "",
        "validation/drift.py": "from ctpipe.models import features\n",  # same floor
        "validation/skew.py": "from models import features\n",  # outside the namespace
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    installed = {"common", "models", "validation"}
    graph = import_graph(tmp_path, installed)
    assert upward_imports(graph, installed) == [
        "ctpipe.common.errors (floor 0) imports ctpipe.models.features (floor 1)",
        "ctpipe.validation.drift (floor 1) imports ctpipe.models.features (floor 1)"]
    assert circles(graph) == [["ctpipe.models.features", "ctpipe.models.inputs"]]
    modules = project_modules(tmp_path, installed)
    assert imports_of("ctpipe.validation.skew", tmp_path / "validation/skew.py",
                      modules)[1] == {"models"}


def test_the_image_installs_what_setup_installs():
    """The Dockerfile copies the whole build context and installs it with setup.py, so the one
    list is setup.py's; .dockerignore must not leave out an installed folder."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY . /tmp/src" in dockerfile
    assert "walk_packages(ctpipe.__path__, 'ctpipe.')" in dockerfile
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert ignored & (INSTALLED | {NAMESPACE, "setup.py"}) == set()


def function_level_imports(path: Path) -> list[int]:
    """Lines of imports written inside functions without a one-line reason ("lazy on
    purpose: ...") on that line or the one above."""
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    reason = " ".join(lines[max(inner.lineno - 2, 0):inner.lineno]).lower()
                    if "lazy on purpose" not in reason:
                        found.append(inner.lineno)
    return found


def test_imports_sit_at_the_top_of_modules_outside_the_command_line():
    """The command line imports its libraries inside its handlers, for start-up time; every
    other module shows its dependencies at the top, or says in one line why not."""
    lazy = {}
    for name, (folder, path) in project_modules(REPO, INSTALLED).items():
        if folder != NAMESPACE and function_level_imports(path):
            lazy[name] = function_level_imports(path)
    assert lazy == {}


def test_the_top_of_module_check_finds_an_unexplained_lazy_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import json\n\n\ndef g():\n"
                      "    import csv  # lazy on purpose: a reason\n")
    assert function_level_imports(module) == [2]


# A room that grows past this holds more than one thing (issue 28); tests and benchmarks aside.
MAX_MODULE_LINES = 450


def test_no_module_outgrows_one_room():
    long = {name: lines for name, (folder, path) in project_modules(REPO, INSTALLED).items()
            if folder != "bench"
            and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
