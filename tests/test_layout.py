"""The package's layout: no import circle, no private name reached across modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tracelens"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    """Every module of the package: its ``.py`` files, and the stubs of its C extensions."""
    files = sorted(PACKAGE.rglob("*.py"))
    files += [p for p in sorted(PACKAGE.rglob("*.pyi")) if not p.with_suffix(".py").exists()]
    return {_module_name(p): ast.parse(p.read_text()) for p in files}


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``import from`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None)
            if (
                isinstance(child, ast.If)
                and isinstance(test, ast.Name)
                and test.id == "TYPE_CHECKING"
            ):
                continue
            out.append(child)
            todo.append(child)
    return out


def _imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The tracelens modules ``module`` imports, at import time or later (inside a
    function), but not for type checking only: a module, or the module of a name
    imported from it."""
    out: set[str] = set()
    for stmt in _runtime_nodes(tree):
        if isinstance(stmt, ast.Import):
            out |= {a.name for a in stmt.names if a.name in known}
        elif isinstance(stmt, ast.ImportFrom):
            base = _absolute(module, stmt)
            for a in stmt.names:
                sub = f"{base}.{a.name}"
                if sub in known:
                    out.add(sub)
                elif base in known:
                    out.add(base)
    out.discard(module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle():
    """The circle search reports a circle of three modules (so a clean result means something)."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_inside_the_package():
    """No tracelens module imports, directly or through others, a module that imports it
    (imports inside functions count too)."""
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, tree, known) for name, tree in modules.items()}
    assert _cycle(graph) is None


def _private_module_ok(importer: str, target: str) -> bool:
    """Whether ``importer`` may import ``target``, a module with a private part.

    A private module (``record/_core.py``) belongs to its package: modules inside that
    package may import it, and so may the ``__init__`` of an ancestor package that
    re-exports its public names (``tracelens/__init__.py``, as httpx's does).
    """
    parts = target.split(".")
    private = next(i for i, part in enumerate(parts) if part.startswith("_"))
    owner = ".".join(parts[:private])
    if importer == owner or importer.startswith(owner + "."):
        return True
    return _is_package(importer) and owner.startswith(importer + ".")


def _has_private_part(module: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in module.split("."))


def _private_uses(module: str, tree: ast.Module, known: set[str]) -> list[str]:
    """Private names (``_x``) of other tracelens modules that ``module`` imports or reads,
    and private modules it may not import (``_private_module_ok``)."""
    aliases: dict[str, str] = {}  # local name -> tracelens module
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    aliases[a.asname or a.name.split(".")[0]] = a.name
                    if _has_private_part(a.name) and not _private_module_ok(module, a.name):
                        bad.append(f"{module} imports the private module {a.name}")
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            if not base.startswith("tracelens"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                target = sub if sub in known else base
                if sub in known:
                    aliases[a.asname or a.name] = sub
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"{module} imports {a.name} from {base}")
                if _has_private_part(target) and not _private_module_ok(module, target):
                    bad.append(f"{module} imports the private module {target}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id, "")
            attr = node.attr
            if target and attr.startswith("_") and not attr.startswith("__"):
                bad.append(f"{module} reads {target}.{attr}")
    return bad


def test_the_private_name_check_sees_a_private_import():
    """A module importing ``_x`` from another tracelens module is caught."""
    tree = ast.parse("from tracelens.analyze.load import _x\n")
    assert _private_uses("tracelens.cli", tree, {"tracelens.analyze.load"}) == [
        "tracelens.cli imports _x from tracelens.analyze.load"
    ]


def test_no_private_name_is_reached_across_modules():
    """No module imports or reads another tracelens module's private names."""
    modules = _modules()
    known = set(modules)
    bad = [b for name, tree in modules.items() for b in _private_uses(name, tree, known)]
    assert sorted(set(bad)) == []
