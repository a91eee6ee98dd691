"""The recorder's modules: no import circle, and no use of another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import tracelens

ROOT = Path(tracelens.__file__).resolve().parent
#: The recorder side of the package: what ``import tracelens`` and recording load.
FILES = sorted(
    [
        *ROOT.joinpath("record").glob("*.py"),
        *ROOT.joinpath("importers").glob("*.py"),
        *(ROOT / f for f in ("__init__.py", "processors.py", "schema.py", "testing.py")),
    ]
)


def _module_name(path: Path) -> str:
    parts = ["tracelens", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def _imports(path: Path) -> set[str]:
    """The tracelens modules ``path`` imports when it runs (at any depth, not for typing)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tracelens")
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            if node.module.split(".")[0] != "tracelens":
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_graph_walk_finds_a_circle():
    """The circle finder reports a circle when there is one (so the next test can fail)."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_recorder_module_imports_itself_through_others():
    """No chain of runtime imports among the recorder's modules leads back to where it began."""
    graph = {_module_name(f): _imports(f) for f in FILES}
    assert "tracelens.record._core" in graph["tracelens.record._config"]  # the walk sees imports

    assert _cycle(graph) is None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(me: str, source: str) -> list[str]:
    """Where module ``me`` (its ``source``) takes a private name from another tracelens module.

    A private module of ``tracelens.record`` (``_core``...) may be imported by its
    siblings; the names it hands out, and those of every other module, must be public.
    Private names of the standard library are not looked at.
    """
    package = me.rsplit(".", 1)[0]
    tree = ast.parse(source)
    aliases: set[str] = set()  # local names bound to tracelens modules
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "tracelens":
                    aliases.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] != "tracelens":
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if _is_module(sub):
                    aliases.add(a.asname or a.name)
                    sibling = node.module == package and package == "tracelens.record"
                    if _private(a.name) and not sibling:
                        found.append(f"{me}:{node.lineno} imports module {sub}")
                elif _private(a.name):
                    found.append(f"{me}:{node.lineno} imports {sub}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
        ):
            found.append(f"{me}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_the_private_name_finder_sees_every_kind_of_use():
    """A private name imported, or read off a module, and a far private module are reported."""
    code = (
        "from tracelens.record import _core\n"
        "from tracelens.record._core import _SECRET, STATE\n"
        "x = _core._hidden(1)\n"
        "y = _core.public, _core.__file__\n"
    )
    assert _private_uses("tracelens.record.fake", code) == [
        "tracelens.record.fake:2 imports tracelens.record._core._SECRET",
        "tracelens.record.fake:3 uses _core._hidden",
    ]
    assert _private_uses("tracelens.fake", code)[0] == (
        "tracelens.fake:1 imports module tracelens.record._core"
    )


def test_no_recorder_module_uses_another_modules_private_names():
    """The recorder's modules take only public names from one another."""
    found = [use for f in FILES for use in _private_uses(_module_name(f), f.read_text())]

    assert found == []
