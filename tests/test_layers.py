"""The package imports downward only, has no import loops, and installs every one of its folders.

Layers, bottom to top. A module may import its own layer and the ones below; an import from a
higher layer, or a loop of imports (within a layer too), fails here. Imports inside functions
count: a lazy import is still a dependency. Imports under `if TYPE_CHECKING:` do not: they name a
type for annotations and never run.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"edge": "faceedge.edge", "pipelines": "faceedge.pipelines", "trt_engines": "faceedge.trt_engines",
           "calibration": "faceedge.calibration"}

# (layer, module prefixes); the longest matching prefix decides a module's layer. `faceedge.edge` holds
# modules of every layer, so as a prefix it names only its __init__: a new edge module is placed here by hand.
MIXED_PACKAGES = {"faceedge.edge"}
LAYERS = [
    ("types", ["faceedge.edge.errors", "faceedge.edge.model_files", "faceedge.edge.align",
               "faceedge.edge.face_geometry", "faceedge.edge.clip_writer", "faceedge.edge.wire", "faceedge.edge.identity_split",
               "faceedge.edge"]),
    ("inference", ["faceedge.trt_engines"]),
    # The typed config schema: it takes each backend plugin's settings from the inference layer.
    ("config", ["faceedge.edge.config"]),
    ("models", ["faceedge.trt_engines.models", "faceedge.trt_engines.model_registry", "faceedge.edge.detector_input",
                "faceedge.edge.detect", "faceedge.edge.recognize", "faceedge.edge.recognizers",
                "faceedge.edge.face_input", "faceedge.edge.quality_io", "faceedge.edge.select",
                "faceedge.edge.enhance", "faceedge.edge.face_quality"]),
    ("stages", ["faceedge.edge.source", "faceedge.edge.cadence", "faceedge.edge.cuts", "faceedge.edge.track",
                "faceedge.edge.identity", "faceedge.edge.typical", "faceedge.edge.publish_policy", "faceedge.edge.face_message",
                "faceedge.edge.detect_align", "faceedge.edge.stream_tracks", "faceedge.edge.track_select"]),
    ("operations", ["faceedge.edge.metrics", "faceedge.edge.security", "faceedge.edge.publish",
                    "faceedge.edge.subscribe", "faceedge.edge.spool", "faceedge.edge.notify", "faceedge.edge.relay"]),
    ("pipeline", ["faceedge.edge.pipeline"]),
    ("tools", ["faceedge.edge.bench", "faceedge.edge.density", "faceedge.edge.demo", "faceedge.edge.doctor",
               "faceedge.calibration", "faceedge.pipelines"]),
    ("cli", ["faceedge.edge.commands", "faceedge.edge.cli"]),
]


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def runtime_nodes(tree: ast.AST):
    """Every node of `tree` outside `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import module` names a module; `from module import name` names the module.
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    best, layer = "", None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            below = name.startswith(prefix + ".") and prefix not in MIXED_PACKAGES
            if (name == prefix or below) and len(prefix) > len(best):
                best, layer = prefix, index
    if layer is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return layer


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_every_module_imports_only_its_own_layer_and_those_below(graph):
    upward = [f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for name, targets in sorted(graph.items()) for target in sorted(targets)
              if layer_of(target) > layer_of(name)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_loops(graph):
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail("import loop: " + " -> ".join(exc.args[1]))


def test_the_checker_sees_an_upward_import_and_a_loop(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from faceedge.edge.cli import main\n"
                 "def f():\n    from faceedge.edge.pipeline import Pipeline\n")
    b.write_text("from . import a\n")
    known = {"faceedge.edge.errors", "faceedge.edge.pipeline", "faceedge.edge.errors_b"}
    assert imports_of("faceedge.edge.errors", a, known) == {"faceedge.edge.pipeline"}
    assert layer_of("faceedge.edge.pipeline") > layer_of("faceedge.edge.errors")
    assert imports_of("faceedge.edge.errors_b", b, known | {"faceedge.edge.a"}) == {"faceedge.edge.a"}


def test_every_package_folder_is_installed():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {name for name, path in module_files().items() if path.name == "__init__.py"}
    assert folders == listed, f"pyproject's packages differ from the folders: {sorted(folders ^ listed)}"
