"""The package's layering, checked by reading every module of cls_app with ``ast``.

* each subpackage imports only from the subpackages below it (peers in one band do not import
  each other); base modules (errors, fileio, ...) import only base modules;
* no import cycle between modules (imports inside functions count: they are dependencies too);
* no module imports another module's ``_private`` name;
* every subpackage declares ``__all__``; only ``commands/`` prints.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cls_app"

# low to high; a subpackage may import from a lower rank only (or from itself)
RANKS = {
    "io": 1,
    "tasks": 2,
    "text": 3,
    "modeling": 4,
    "runtime": 5,
    "training": 6,
    "baselines": 6,
    "models": 7,
    "inference": 8,
    "testing": 8,
    "evaluation": 9,
    "service": 10,
    "workflow": 10,
    "commands": 11,
}
BASE_RANK = 0  # top-level modules: errors, fileio, metrics, version, lazy, ...


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[tuple[str, list[str]]]:
    """(target module, imported names) for one import statement, targets inside cls_app only."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names if a.name.split(".")[0] == "cls_app"]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "cls_app":
        return []
    names = [a.name for a in node.names]
    submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    rest = [n for n in names if f"{target}.{n}" not in MODULES]
    return [(s, []) for s in submodules] + ([(target, rest)] if rest or not submodules else [])


def _imports() -> dict[str, list[tuple[str, list[str], int]]]:
    """module -> [(imported module, names, line)]."""
    graph: dict[str, list[tuple[str, list[str], int]]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target, names in _resolve(name, path.name == "__init__.py", node):
                    found.append((target, names, node.lineno))
        graph[name] = found
    return graph


GRAPH = _imports()


def _layer(module: str) -> tuple[str, int] | None:
    """(subpackage, rank) of a module; None for the package's façade ``cls_app/__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in RANKS:
        return parts[1], RANKS[parts[1]]
    return "base", BASE_RANK


def test_every_subpackage_is_ranked():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages <= set(RANKS), f"give these subpackages a rank in RANKS: {subpackages - set(RANKS)}"


def test_imports_go_down_the_layers_only():
    wrong = []
    for module, imports in GRAPH.items():
        here = _layer(module)
        if here is None:
            continue
        for target, _, line in imports:
            there = _layer(target)
            if there is None:
                if target == "cls_app" and module.count(".") >= 1:
                    wrong.append(f"{module}:{line} imports the package façade cls_app (import from the module)")
                continue
            same = here[0] == there[0]
            if not same and there[1] >= here[1]:
                wrong.append(f"{module}:{line} ({here[0]}, rank {here[1]}) imports {target} "
                             f"({there[0]}, rank {there[1]})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    edges = {m: sorted({t for t, _, _ in imps if t in MODULES and t != m}) for m, imps in GRAPH.items()}
    # a package's __init__ re-exporting its modules is not a dependency of those modules on it
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_names_across_modules():
    wrong = [f"{module}:{line} imports {name} from {target}"
             for module, imports in GRAPH.items() for target, names, line in imports
             for name in names if name.startswith("_") and not name.startswith("__") and target != module]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", sorted(RANKS))
def test_subpackage_declares_all(package):
    init = PACKAGE / package / "__init__.py"
    if not init.is_file():
        pytest.skip(f"{package}/ not present")
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "__all__" in names


def test_only_commands_print():
    wrong = []
    for module, path in MODULES.items():
        if module.startswith("cls_app.commands"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                wrong.append(f"{module}:{node.lineno}")
    assert not wrong, "print() outside cls_app/commands: " + ", ".join(wrong)


MAX_HAND_WRITTEN_FLAGS = 60


def test_flags_come_from_the_settings():
    """Flags are generated from the settings dataclasses (one place for each default and help); at most
    :data:`MAX_HAND_WRITTEN_FLAGS` ``add_argument`` calls are written by hand in cls_app/commands."""
    calls = 0
    for module, path in MODULES.items():
        if module.startswith("cls_app.commands"):
            calls += sum(1 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                         if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                         and node.func.attr == "add_argument")
    assert 0 < calls <= MAX_HAND_WRITTEN_FLAGS, calls


def test_the_checks_can_fail(tmp_path):
    """The resolver sees relative imports, function-level imports and private names."""
    src = "def f():\n    from ..training.trainer import _wrap\n"
    node = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom))
    assert _resolve("cls_app.io.records", False, node) == [("cls_app.training.trainer", ["_wrap"])]
    assert _layer("cls_app.io.records") == ("io", 1) and _layer("cls_app.training.trainer") == ("training", 6)
