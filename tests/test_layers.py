"""The package's layers: the import graph of ``src/astrodeconv`` has no cycle and only points down.

Every import counts, at module level and inside functions. The ranks below are the layers
of ``docs/architecture.md``; a module may import modules of a lower rank only (or, within
``nn``, of its own subpackage).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "astrodeconv"

#: Layer of each module (a prefix ending in "." covers a subpackage).
RANKS = {
    "astrodeconv.errors": 0,
    "astrodeconv": 1, "astrodeconv.checks": 1,
    "astrodeconv.registry": 2, "astrodeconv.operators": 2, "astrodeconv.noise": 2, "astrodeconv.masks": 2,
    "astrodeconv.metrics": 2, "astrodeconv.io": 2,
    "astrodeconv.psf": 3,
    "astrodeconv.forward": 4, "astrodeconv.starpsf": 4, "astrodeconv.points": 4, "astrodeconv.wings": 4,
    "astrodeconv.data": 5,
    "astrodeconv.nn": 6, "astrodeconv.nn.": 6,
    "astrodeconv.classical": 7, "astrodeconv.networks": 7,
    "astrodeconv.methods": 8,
    "astrodeconv.selection": 9,
    "astrodeconv.stream": 10, "astrodeconv.parallel": 11,
    "astrodeconv.pipeline": 12,
    "astrodeconv.experiments": 13, "astrodeconv.experiments.": 13,
    "astrodeconv.cli": 14,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def rank(module: str) -> int:
    if module in RANKS:
        return RANKS[module]
    for prefix, value in RANKS.items():
        if prefix.endswith(".") and module.startswith(prefix):
            return value
    raise AssertionError(f"module {module} has no layer in tests/test_layers.py::RANKS; add it (and to docs/architecture.md)")


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its code."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                root = ".".join(anchor + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            # "from . import x" imports the submodule x when there is one, else a name of the package
            targets = [f"{root}.{a.name}" if f"{root}.{a.name}" in known else root for a in node.names]
        else:
            continue
        found.update(t for t in targets if t == PACKAGE or t.startswith(PACKAGE + "."))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) for name, path in mods.items()}


def test_every_module_has_a_layer():
    for name in modules():
        rank(name)


def test_imports_point_down_only():
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            same_subpackage = name.startswith(("astrodeconv.nn", "astrodeconv.experiments")) and \
                target.split(".")[:2] == name.split(".")[:2]
            if not same_subpackage and rank(target) >= rank(name):
                wrong.append(f"{name} (layer {rank(name)}) imports {target} (layer {rank(target)})")
    assert not wrong, "imports that do not point down:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


@pytest.mark.parametrize("forbidden", ["classical", "selection", "methods", "networks", "pipeline", "stream",
                                       "parallel", "experiments", "cli"])
def test_nn_imports_only_downward(forbidden):
    offenders = [name for name, targets in graph().items() if name.startswith("astrodeconv.nn")
                 and any(t == f"astrodeconv.{forbidden}" or t.startswith(f"astrodeconv.{forbidden}.") for t in targets)]
    assert not offenders, f"{offenders} import astrodeconv.{forbidden}"


def test_core_never_imports_the_experiments():
    offenders = [name for name, targets in graph().items()
                 if not name.startswith(("astrodeconv.experiments", "astrodeconv.cli"))
                 and any(t.startswith("astrodeconv.experiments") for t in targets)]
    assert not offenders


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                offenders += [f"{name}: from {'.' * node.level}{node.module or ''} import {a.name}"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.value.id in {m.rpartition(".")[2] for m in modules()}:
                offenders.append(f"{name}: {node.value.id}.{node.attr}")
    assert not offenders, "private names used across modules:\n" + "\n".join(offenders)


def test_the_check_catches_a_cycle_and_an_upward_import(tmp_path):
    """The graph builder itself: a planted upward import from nn is found."""
    fake = tmp_path / PACKAGE
    (fake / "nn").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "classical.py").write_text("from .nn import models\n")
    (fake / "nn" / "__init__.py").write_text("")
    (fake / "nn" / "models.py").write_text("def f():\n    from ..classical import wiener\n")
    globals()["SRC"], saved = tmp_path, SRC
    try:
        edges = graph()
        assert "astrodeconv.classical" in edges["astrodeconv.nn.models"]
        with pytest.raises(AssertionError):
            test_nn_imports_only_downward("classical")
        with pytest.raises(pytest.fail.Exception):
            test_no_import_cycle()
    finally:
        globals()["SRC"] = saved
