"""The package's imports form no cycle, and no module reaches into another's private names.

Walks every module of ``shmforest`` with ``ast``: imports anywhere in a module count
(a function-level import that closes a circle is still a circle), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import shmforest

ROOT = Path(shmforest.__file__).parent
PACKAGE = "shmforest"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def runtime_nodes(tree: ast.AST):
    """Every node, less the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def resolve(current: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = current if MODULES[current].name == "__init__.py" else current.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(name: str) -> tuple[set[str], list[tuple[str, str]]]:
    """Modules of the package that ``name`` imports, and (module, private name) it takes from them."""
    tree = ast.parse(MODULES[name].read_text())
    targets: set[str] = set()
    private: list[tuple[str, str]] = []
    aliases: dict[str, str] = {}
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    targets.add(alias.name)
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = resolve(name, node)
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # a submodule, not a name defined in the package
                    targets.add(sub)
                    aliases[alias.asname or alias.name] = sub
                    continue
                if source in MODULES:
                    targets.add(source)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append((source, alias.name))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if module and node.attr.startswith("_") and not node.attr.startswith("__"):
                private.append((module, node.attr))
    targets.discard(name)
    return targets, private


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_package_has_modules_to_check():
    assert {"shmforest.shared", "shmforest.budget", "shmforest.pool.owner", "shmforest.estimators.base"} <= set(MODULES)


def test_no_import_cycle():
    edges = {name: targets for name, (targets, _) in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(edges.get(name, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_name_is_used_across_modules():
    used = sorted({(name, f"{module}.{attr}") for name, (_, private) in GRAPH.items() for module, attr in private})
    assert not used, "private names used across modules: " + "; ".join(f"{a} uses {b}" for a, b in used)


def test_the_checker_finds_a_cycle_and_a_private_name(tmp_path, monkeypatch):
    """The checks above can fail: a planted circle and a planted private import are found."""
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from shmforest.b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from shmforest.a import _secret\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    modules = {module_name(p): p for p in pkg.rglob("*.py")}
    monkeypatch.setattr(__import__(__name__), "MODULES", modules)
    a_targets, _ = imports_of("shmforest.a")
    b_targets, b_private = imports_of("shmforest.b")
    assert a_targets == {"shmforest.b"} and b_targets == {"shmforest.a"}
    assert b_private == [("shmforest.a", "_secret")]
