"""The package layout is the architecture: layers in data-flow order, no private name crosses a module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asdkit

PACKAGE = Path(asdkit.__file__).parent

#: Layers from the bottom up; a module may import from its own layer or a lower one.
LAYERS = [
    {"constants", "errors", "io", "presets", "runtime"},
    {"data"},
    {"synth"},
    {"features"},
    {"scoring"},
    {"training"},
    {"models"},
    {"evaluation"},
    {"plots"},
    {"experiments"},
    {"cli", "__init__"},
]


def _layer(module: str) -> int:
    head = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError(f"asdkit.{head} is in no layer of tests/test_layout.py; add it to LAYERS")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def _imports(path: Path):
    """(imported module, imported names) of every ``from asdkit... import`` in a file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "asdkit":
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            yield "." * node.level + (node.module or ""), [a.name for a in node.names]


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_module_imports_only_its_layer_or_below(name, path):
    here = _layer(name) if name != "asdkit" else len(LAYERS) - 1
    for module, _names in _imports(path):
        assert not module.startswith("."), f"{name}: relative import {module}; import asdkit.<layer>... instead"
        if module == "asdkit":
            continue
        there = _layer(module)
        assert there <= here, f"{name} (layer {here}) imports {module} (layer {there}), a higher layer"


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_private_name_crosses_a_module(name, path):
    for module, names in _imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{name} imports private name(s) {private} of {module}; make them public or move them"


def test_no_model_file_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in (PACKAGE / "models").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 430}
    assert not long, f"model files over ~400 lines: {long}; split them where the layers part"
