"""Record the shared-state accesses of code nobody marked: an import-time rewrite.

The way pytest rewrites ``assert``: chosen modules are parsed, their accesses rewritten
into calls of ``tracelens.record.shadow``'s helpers, and compiled, when they are
imported (``install``: a finder first on ``sys.meta_path``; ``runpy``, which asks the
loader for the code, gets ``standalone`` code that sets up its helpers itself) or, for
the script that ``tracelens run`` runs, before it runs (``run_script``).
``multiprocessing`` children rewrite the same modules (``follow_into_child``). Other
modules run as they are, at full speed. The rewrite keeps line numbers, so call sites
are the program's.

What is rewritten (``_Rewriter``):

=============================  =============================================
``o.a`` (a load)               ``_tl_get_a(o)``
``o.a = v``, ``del o.a``       ``_tl_set_a(o, v)``, ``_tl_del_a(o)``
``o.a += v``                   ``_tl_aug_a(o, operator.iadd, v)``
``o[k]``, ``o[k] = v``         ``_tl_item_get(o, k, "o")``, ``_tl_item_set(...)``
``del o[k]``, ``o[k] += v``    ``_tl_item_del(...)``, ``_tl_item_aug(...)``
``k in o``, ``k not in o``     ``_tl_item_in(o, k, "o")``, ``not ...``
``o.append(x)`` and the other  ``_tl_m_append(o, "o", x)``: recorded when ``o`` is a
builtin container methods      dict, list, set or deque, else a plain call
``x`` declared ``global``      ``_tl_g_load("x")``, ``_tl_g_store("x", v)``
``for x in o``, comprehensions  ``for x in _tl_item_iter(o, "o")``: iterating a
                               container reads its key set when it starts and
                               again when it ends
``len(o)``, ``sorted(o)``,     ``_tl_b_len(len, ("o",), o)``: the callee as the
``iter(o)``, ... (builtins     program looked it up, recorded only when it is the
that read a whole container)   builtin (``shadow.BUILTIN_READERS``)
``sep.join(o)``                ``_tl_join(sep.join, ("o",), o)``
``if o:``, ``while o:``,       ``if _tl_truth(o, "o"):``: a truth test of a name,
``not o``, ``x if o else y``   attribute or item (a bool)
``a == b``, ``a != b``         ``_tl_eq(a, b, "a", "b")``, ``_tl_ne(...)`` (not when
                               a side is a constant)
=============================  =============================================

Left alone: method calls other than the containers' (``o.f(x)`` looks ``f`` up
unrecorded), local variables, names of functions, classes and modules, augmented
assignments to slices, and assignments that unpack into several targets (their
element targets are not recorded). In ``o.a += f()`` and ``o[k] += f()``, ``f()`` is
evaluated before ``o.a`` is read, not after: the read-modify-write window is the
same, and only a program whose ``f`` changes ``o.a`` can tell.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import importlib.abc
import importlib.machinery
import importlib.util
import operator
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from tracelens.record import shadow
from tracelens.record._core import say_once

__all__ = [
    "Instrumenter",
    "active",
    "already_imported",
    "bootstrap",
    "follow_into_child",
    "install",
    "instrumented",
    "main_namespace",
    "namespace",
    "project_root",
    "rewrite",
    "run_script",
    "standalone",
    "uninstall",
]

_AUG_OPS: Final = {
    ast.Add: "iadd",
    ast.Sub: "isub",
    ast.Mult: "imul",
    ast.MatMult: "imatmul",
    ast.Div: "itruediv",
    ast.FloorDiv: "ifloordiv",
    ast.Mod: "imod",
    ast.Pow: "ipow",
    ast.LShift: "ilshift",
    ast.RShift: "irshift",
    ast.BitAnd: "iand",
    ast.BitOr: "ior",
    ast.BitXor: "ixor",
}
_PREFIX: Final = "_tl_"


def _mangle(name: str, cls: str | None) -> str:
    """The attribute name Python compiles ``name`` to inside class ``cls``."""
    if cls is None or not name.startswith("__") or name.endswith("__"):
        return name
    stripped = cls.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


class _Rewriter(ast.NodeTransformer):
    """Rewrites one module's accesses (see the module docstring)."""

    def __init__(self) -> None:
        self.needs: dict[str, tuple[str, ...]] = {}
        self._classes: list[str | None] = [None]
        self._globals: list[set[str]] = [set()]
        self._temps = 0
        self._comprehensions: list[ast.expr] = []

    # -- helpers ---------------------------------------------------------------------------

    def _helper(self, name: str, what: tuple[str, ...], node: ast.AST) -> ast.Name:
        self.needs[name] = what
        return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)

    def _attr(self, kind: str, attr: str, node: ast.AST) -> ast.Name:
        mangled = _mangle(attr, self._classes[-1])
        return self._helper(f"{_PREFIX}{kind}_{mangled}", ("attr", kind, mangled, attr), node)

    def _item(self, kind: str, node: ast.AST) -> ast.Name:
        return self._helper(f"{_PREFIX}item_{kind}", ("item", kind), node)

    def _call(self, func: ast.expr, args: list[ast.expr], node: ast.AST) -> ast.Call:
        call = ast.Call(func=func, args=args, keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def _op(self, op: ast.operator, node: ast.AST) -> ast.expr:
        name = _AUG_OPS[type(op)]
        helper = self._helper(f"{_PREFIX}op_{name}", ("op", name), node)
        return helper

    @staticmethod
    def _label(value: ast.expr) -> ast.Constant:
        text = ast.unparse(value)
        return ast.Constant(text if len(text) <= 60 else text[:57] + "...")

    @staticmethod
    def _fresh(node: ast.expr) -> bool:
        """Whether ``node`` makes a new value each time (a literal, a display, a
        comprehension): nobody else can hold it, so reading it is not recorded."""
        return isinstance(
            node,
            ast.Constant
            | ast.List
            | ast.Tuple
            | ast.Dict
            | ast.Set
            | ast.ListComp
            | ast.SetComp
            | ast.DictComp
            | ast.GeneratorExp
            | ast.JoinedStr,
        )

    def _arg_label(self, node: ast.expr) -> ast.Constant:
        """A whole-read argument's label; ``""`` for a fresh value (not recorded)."""
        return ast.Constant("") if self._fresh(node) else self._label(node)

    @staticmethod
    def _key(node: ast.expr) -> ast.expr:
        """A subscript's index as an expression (slices become ``slice(...)`` calls)."""
        if isinstance(node, ast.Slice):
            parts = [p if p is not None else ast.Constant(None) for p in (node.lower, node.upper)]
            parts.append(node.step if node.step is not None else ast.Constant(None))
            call = ast.Call(func=ast.Name(id="slice", ctx=ast.Load()), args=parts, keywords=[])
            return ast.copy_location(call, node)
        if isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.elts):
            elts = [_Rewriter._key(e) for e in node.elts]
            return ast.copy_location(ast.Tuple(elts=elts, ctx=ast.Load()), node)
        return node

    # -- scopes ----------------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._classes.append(node.name)
        try:
            return self.generic_visit(node)
        finally:
            self._classes.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> ast.AST:
        declared: set[str] = set()
        if not isinstance(node, ast.Lambda):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Global):
                    declared.update(sub.names)
        self._globals.append(declared)
        try:
            return self.generic_visit(node)
        finally:
            self._globals.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    # -- loads -----------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            return self.generic_visit(node)
        value = self.visit(node.value)
        return self._call(self._attr("get", node.attr, node), [value], node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            return self.generic_visit(node)
        value = self.visit(node.value)
        key = self._key(self.visit(node.slice))
        return self._call(self._item("get", node), [value, key, self._label(node.value)], node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self._globals[-1]:
            helper = self._helper(f"{_PREFIX}g_load", ("global", "load"), node)
            return self._call(helper, [ast.Constant(node.id)], node)
        return node

    def _plain_args(self, node: ast.Call) -> bool:
        """Whether a call passes no ``*args`` or ``**kwargs`` (its arguments can be named)."""
        return not any(isinstance(a, ast.Starred) for a in node.args) and all(
            k.arg is not None for k in node.keywords
        )

    def _reader_call(self, helper: ast.Name, func: ast.expr, node: ast.Call) -> ast.Call:
        """``helper(func, (labels...), *args, **kwargs)``: the callee as the program looks
        it up, the labels of the positional arguments, then the arguments."""
        labels = ast.Tuple(elts=[self._arg_label(a) for a in node.args], ctx=ast.Load())
        args = [self.visit(a) for a in node.args]
        keywords = [self.visit(k) for k in node.keywords]
        call = ast.Call(func=helper, args=[func, labels, *args], keywords=keywords)
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id in shadow.BUILTIN_READERS
            and node.args
            and not all(self._fresh(a) for a in node.args)
            and self._plain_args(node)
        ):  # len(x), sorted(x), iter(x), ...: recorded when the callee is the builtin
            helper = self._helper(f"{_PREFIX}b_{func.id}", ("builtin", func.id), func)
            return self._reader_call(helper, self.visit(func), node)
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "join"
            and len(node.args) == 1
            and not node.keywords
            and not self._fresh(node.args[0])
            and self._plain_args(node)
        ):  # sep.join(x): the bound method looked up as the program does
            helper = self._helper(f"{_PREFIX}join", ("join",), func)
            bound = ast.copy_location(
                ast.Attribute(value=self.visit(func.value), attr="join", ctx=ast.Load()), func
            )
            return self._reader_call(helper, bound, node)
        if isinstance(func, ast.Attribute) and func.attr in shadow.CONTAINER_METHODS:
            helper = self._helper(f"{_PREFIX}m_{func.attr}", ("method", func.attr), func)
            args = [self.visit(a) for a in node.args]
            keywords = [self.visit(k) for k in node.keywords]
            receiver = [self.visit(func.value), self._label(func.value)]
            call = ast.Call(func=helper, args=[*receiver, *args], keywords=keywords)
            return ast.fix_missing_locations(ast.copy_location(call, node))
        if isinstance(func, ast.Attribute):  # a method call: the lookup is not data
            node.func = ast.copy_location(
                ast.Attribute(value=self.visit(func.value), attr=func.attr, ctx=ast.Load()), func
            )
            node.args = [self.visit(a) for a in node.args]
            node.keywords = [self.visit(k) for k in node.keywords]
            return node
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if (
            len(node.ops) == 1
            and isinstance(node.ops[0], ast.Eq | ast.NotEq)
            and not (self._fresh(node.left) and self._fresh(node.comparators[0]))
            and not isinstance(node.left, ast.Constant)
            and not isinstance(node.comparators[0], ast.Constant)
        ):  # a == b: of containers, a read of each whole (never of a literal's)
            kind = "eq" if isinstance(node.ops[0], ast.Eq) else "ne"
            helper = self._helper(f"{_PREFIX}{kind}", ("compare", kind), node)
            left, right = self.visit(node.left), self.visit(node.comparators[0])
            labels = [self._arg_label(node.left), self._arg_label(node.comparators[0])]
            return self._call(helper, [left, right, *labels], node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            item = self.visit(node.left)
            container = self.visit(node.comparators[0])
            call = self._call(
                self._item("in", node), [container, item, self._label(node.comparators[0])], node
            )
            if isinstance(node.ops[0], ast.NotIn):
                return ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=call), node)
            return call
        return self.generic_visit(node)

    # -- truth tests ------------------------------------------------------------------------

    def _test(self, node: ast.expr) -> ast.expr:
        """An expression whose truth only is used (``if``, ``while``, ``not``, ...): a
        name, attribute or item tested becomes ``_tl_truth(value, label)``, a bool."""
        if isinstance(node, ast.BoolOp):
            node.values = [self._test(v) for v in node.values]
            return node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            node.operand = self._test(node.operand)
            return node
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            helper = self._helper(f"{_PREFIX}truth", ("truth",), node)
            return self._call(helper, [self.visit(node), self._label(node)], node)
        result: ast.expr = self.visit(node)
        return result

    def visit_If(self, node: ast.If | ast.While) -> ast.AST:
        node.test = self._test(node.test)
        node.body = self._statements(node.body)
        node.orelse = self._statements(node.orelse)
        return node

    visit_While = visit_If

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        node.test = self._test(node.test)
        node.body = self.visit(node.body)
        node.orelse = self.visit(node.orelse)
        return node

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        node.test = self._test(node.test)
        if node.msg is not None:
            node.msg = self.visit(node.msg)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Not):
            node.operand = self._test(node.operand)
            return node
        return self.generic_visit(node)

    # -- iteration --------------------------------------------------------------------------

    def _iterable(self, node: ast.expr, where: ast.AST) -> ast.expr:
        """An iterated expression, as ``_tl_item_iter(expr, label)``, placed where
        Python places the ``iter()`` call (``where``: the ``for`` statement or the
        comprehension), so that a ``TypeError`` reads as in the plain run."""
        value = self.visit(node)
        return self._call(self._item("iter", node), [value, self._label(node)], where)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> ast.AST:
        if isinstance(node, ast.For):
            node.iter = self._iterable(node.iter, node)
        else:
            node.iter = self.visit(node.iter)
        stores: list[tuple[ast.expr, str]] = []
        if self._recorded_target(node.target):  # for self.item in ...: a store each turn
            node.target = self._unpack(node.target, stores)
        else:
            node.target = self.visit(node.target)
        node.body = self._assign_all(stores, node)[:-1] + self._statements(node.body)
        node.orelse = self._statements(node.orelse)
        return node

    def visit_With(self, node: ast.With | ast.AsyncWith) -> ast.AST:
        stores: list[tuple[ast.expr, str]] = []
        for item in node.items:
            item.context_expr = self.visit(item.context_expr)
            if item.optional_vars is None:
                continue
            if self._recorded_target(item.optional_vars):  # with ... as self.f:
                item.optional_vars = self._unpack(item.optional_vars, stores)
            else:
                item.optional_vars = self.visit(item.optional_vars)
        node.body = (self._assign_all(stores, node)[:-1] if stores else []) + self._statements(
            node.body
        )
        return node

    visit_AsyncWith = visit_With

    def _statements(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """Statements visited; a statement may become several (``del a[i], b.x``)."""
        out: list[ast.stmt] = []
        for stmt in body:
            new = self.visit(stmt)
            if isinstance(new, list):
                out.extend(new)
            elif new is not None:
                out.append(new)
        return out

    visit_AsyncFor = visit_For

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    ) -> ast.AST:
        self._comprehensions.append(node)
        try:
            return self.generic_visit(node)
        finally:
            self._comprehensions.pop()

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node.target = self.visit(node.target)
        where = self._comprehensions[-1] if self._comprehensions else node.iter
        node.iter = self.visit(node.iter) if node.is_async else self._iterable(node.iter, where)
        node.ifs = [self._test(i) for i in node.ifs]
        return node

    # -- stores ----------------------------------------------------------------------------

    def _store(self, target: ast.expr, value: ast.expr, node: ast.stmt) -> ast.stmt | None:
        """``target = value`` as a helper call, or ``None`` when not rewritten."""
        if isinstance(target, ast.Attribute):
            obj = self.visit(target.value)
            call = self._call(self._attr("set", target.attr, target), [obj, value], target)
        elif isinstance(target, ast.Subscript):
            obj = self.visit(target.value)
            key = self._key(self.visit(target.slice))
            label = self._label(target.value)
            call = self._call(self._item("set", target), [obj, key, value, label], target)
        elif isinstance(target, ast.Name) and target.id in self._globals[-1]:
            helper = self._helper(f"{_PREFIX}g_store", ("global", "store"), target)
            call = self._call(helper, [ast.Constant(target.id), value], node)
        else:
            return None
        return ast.copy_location(ast.Expr(value=call), node)

    def _recorded_target(self, target: ast.expr) -> bool:
        """Whether storing to ``target`` is recorded (an attribute, an item, a global)."""
        if isinstance(target, ast.Attribute | ast.Subscript):
            return True
        if isinstance(target, ast.Name):
            return target.id in self._globals[-1]
        if isinstance(target, ast.Tuple | ast.List):
            return any(self._recorded_target(e) for e in target.elts)
        if isinstance(target, ast.Starred):
            return self._recorded_target(target.value)
        return False

    def _unpack(self, target: ast.expr, stores: list[tuple[ast.expr, str]]) -> ast.expr:
        """``target`` with every name, attribute and item in it replaced by a temporary.

        ``stores`` gets ``(original target, temporary)`` in the order Python assigns
        them, so that the stores made afterwards, one by one, evaluate each target's
        object and key at the moment Python would (``d[i], i = 1, 2`` keys on the old
        ``i``).
        """
        if isinstance(target, ast.Tuple | ast.List):
            target.elts = [self._unpack(e, stores) for e in target.elts]
            return target
        if isinstance(target, ast.Starred):
            target.value = self._unpack(target.value, stores)
            return target
        name = f"{_PREFIX}tmp{self._temps}"
        self._temps += 1
        stores.append((target, name))
        return ast.copy_location(ast.Name(id=name, ctx=ast.Store()), target)

    def _assign_all(self, stores: list[tuple[ast.expr, str]], node: ast.stmt) -> list[ast.stmt]:
        """The stores ``_unpack`` deferred, in order, then the temporaries deleted."""
        out: list[ast.stmt] = []
        for target, name in stores:
            value = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
            stmt = self._store(target, value, node)
            if stmt is None:  # a plain local name
                stmt = ast.Assign(targets=[self.visit(target)], value=value)
            out.append(ast.fix_missing_locations(ast.copy_location(stmt, node)))
        names: list[ast.expr] = [ast.Name(id=n, ctx=ast.Del()) for _, n in stores]
        out.append(ast.fix_missing_locations(ast.copy_location(ast.Delete(targets=names), node)))
        return out

    def visit_Assign(self, node: ast.Assign) -> Any:
        value = self.visit(node.value)
        if len(node.targets) == 1:
            stmt = self._store(node.targets[0], value, node)
            if stmt is not None:
                return stmt
        node.value = value
        if not any(self._recorded_target(t) for t in node.targets):
            node.targets = [self.visit(t) for t in node.targets]
            return node
        # a, self.x = ... / o.x = o.y = ... : bind temporaries, then store in order
        stores: list[tuple[ast.expr, str]] = []
        node.targets = [self._unpack(t, stores) for t in node.targets]
        return [node, *self._assign_all(stores, node)]

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        if node.value is not None and isinstance(node.target, ast.Attribute | ast.Subscript):
            stmt = self._store(node.target, self.visit(node.value), node)
            if stmt is not None:
                return stmt
        return self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target, value = node.target, self.visit(node.value)
        op = self._op(node.op, node)
        if isinstance(target, ast.Attribute):
            obj = self.visit(target.value)
            call = self._call(self._attr("aug", target.attr, target), [obj, op, value], node)
        elif isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            obj = self.visit(target.value)
            key = self._key(self.visit(target.slice))
            label = self._label(target.value)
            call = self._call(self._item("aug", target), [obj, key, op, value, label], node)
        elif isinstance(target, ast.Name) and target.id in self._globals[-1]:
            helper = self._helper(f"{_PREFIX}g_aug", ("global", "aug"), target)
            call = self._call(helper, [ast.Constant(target.id), op, value], node)
        else:
            node.value = value
            node.target = self.visit(target)
            return node
        return ast.copy_location(ast.Expr(value=call), node)

    def visit_Delete(self, node: ast.Delete) -> Any:
        out: list[ast.stmt] = []
        rest: list[ast.expr] = []
        for target in node.targets:
            if isinstance(target, ast.Attribute):
                obj = self.visit(target.value)
                call = self._call(self._attr("del", target.attr, target), [obj], target)
            elif isinstance(target, ast.Subscript):
                obj = self.visit(target.value)
                key = self._key(self.visit(target.slice))
                label = self._label(target.value)
                call = self._call(self._item("del", target), [obj, key, label], target)
            else:
                rest.append(self.visit(target))
                continue
            out.append(ast.copy_location(ast.Expr(value=call), node))
        if rest:
            out.append(ast.copy_location(ast.Delete(targets=rest), node))
        return out


def rewrite(
    source: str | bytes, filename: str
) -> tuple[types.CodeType, dict[str, tuple[str, ...]]]:
    """Parse, rewrite and compile a module's source.

    Returns:
        The code object and the helpers it needs (``shadow.helpers``).

    Raises:
        SyntaxError: The source does not parse (as compiling it unchanged would).
    """
    tree = ast.parse(source, filename)
    rewriter = _Rewriter()
    tree = rewriter.visit(tree)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True), rewriter.needs


def standalone(source: str | bytes, filename: str) -> types.CodeType:
    """``rewrite``'s code, made to put its helpers into its globals itself when it runs.

    For the code that the import system does not run: ``runpy.run_module`` (``python
    -m``, a ``multiprocessing`` child re-running the parent's ``-m`` module) asks the
    loader for the code and runs it in a module of its own. The first statement (after
    the docstring and ``from __future__`` imports) calls ``bootstrap``.

    Raises:
        SyntaxError: The source does not parse (as compiling it unchanged would).
    """
    tree = ast.parse(source, filename)
    rewriter = _Rewriter()
    tree = rewriter.visit(tree)
    needs = tuple(sorted(rewriter.needs.items()))
    call = ast.parse(
        "__import__('tracelens.record.instrument').record.instrument.bootstrap(globals(), 0)"
    ).body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    call.value.args[1] = ast.Constant(needs)  # type: ignore[arg-type]  # a tuple constant
    at = 0
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        at = 1  # the docstring
    while (
        at < len(body) and isinstance(body[at], ast.ImportFrom) and body[at].module == "__future__"
    ):
        at += 1
    where = body[at] if at < len(body) else None
    for node in ast.walk(call):
        node.lineno = node.end_lineno = where.lineno if where is not None else 1  # type: ignore[attr-defined]
        node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    body.insert(at, call)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True)


def bootstrap(g: dict[str, Any], needs: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Put the helpers of a ``standalone`` module into its globals (called by its code).

    A ``multiprocessing`` child's re-run of ``__main__`` (``__mp_main__``) names its
    variables as the parent's ``__main__`` does.
    """
    module = g.get("__name__", "__main__")
    namespace(dict(needs), g, "__main__" if module == "__mp_main__" else module)


def namespace(needs: dict[str, tuple[str, ...]], g: dict[str, Any], module: str) -> None:
    """Put the helpers a rewritten module needs into its globals."""
    ops = {n: getattr(operator, w[1]) for n, w in needs.items() if w[0] == "op"}
    g.update(shadow.helpers({n: w for n, w in needs.items() if w[0] != "op"}, g, module))
    g.update(ops)


# --- which modules ---------------------------------------------------------------------


def project_root(start: str | os.PathLike[str]) -> Path:
    """The directory of the nearest ``pyproject.toml`` at or above ``start``, else
    ``start`` itself (a directory, or a file's directory)."""
    here = Path(start).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file():
            return d
    return here


def _excluded_dirs() -> list[str]:
    """Where modules that are never rewritten by default live."""
    import sysconfig

    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(str(Path(__file__).resolve().parents[1]))  # tracelens itself
    dirs.add(sys.prefix)
    dirs.add(sys.base_prefix)
    return sorted(os.path.realpath(d) for d in dirs if d)


class Instrumenter(importlib.abc.MetaPathFinder):
    """The finder that rewrites chosen modules as they are imported.

    Args:
        patterns: Module names to rewrite, ``*`` matching any part (``botocore.*``).
        root: Also rewrite every module whose file lies under this directory, except
            in virtual environments, site-packages, the standard library and tracelens.
    """

    def __init__(self, patterns: Sequence[str] = (), root: str | os.PathLike[str] | None = None):
        self.patterns = [p for p in patterns if p]
        self.root = os.path.realpath(root) if root is not None else None
        self._excluded = _excluded_dirs()
        self.rewritten: list[str] = []

    def wants(self, name: str, origin: str | None) -> bool:
        """Whether the module ``name`` (at ``origin``) is rewritten."""
        if name == "tracelens" or name.startswith("tracelens."):
            return False
        for p in self.patterns:
            if fnmatch.fnmatchcase(name, p) or (p.endswith(".*") and name == p[:-2]):
                return True
        if self.root is None or origin is None:
            return False
        path = os.path.realpath(origin)
        if not path.startswith(self.root + os.sep):
            return False
        parts = Path(path).parts
        if any(x in ("site-packages", "dist-packages", ".venv", "venv", ".tox") for x in parts):
            return False
        return not any(path.startswith(d + os.sep) for d in self._excluded)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if not isinstance(loader, importlib.machinery.SourceFileLoader):
            return spec
        if not self.wants(fullname, spec.origin):
            return spec
        spec.loader = _RewritingLoader(loader.name, loader.path, self)
        return spec


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from its source, rewritten (no bytecode cache)."""

    def __init__(self, fullname: str, path: str, owner: Instrumenter) -> None:
        super().__init__(fullname, path)
        self._owner = owner

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            code, needs = rewrite(self.get_data(self.path), self.path)
        except SyntaxError:
            super().exec_module(module)  # the plain import reports it as it would
            return
        except Exception as e:  # a rewrite that fails must not stop the program
            say_once(
                f"could not instrument {module.__name__} ({type(e).__name__}: {e}); it runs as is"
            )
            super().exec_module(module)
            return
        namespace(needs, module.__dict__, module.__name__)
        self._owner.rewritten.append(module.__name__)
        exec(code, module.__dict__)

    def get_code(self, fullname: str) -> types.CodeType | None:
        """The module's code rewritten (``standalone``), for ``runpy`` and the like, which
        run it in a module of their own rather than through ``exec_module``."""
        try:
            code = standalone(self.get_data(self.path), self.path)
        except SyntaxError:
            return super().get_code(fullname)  # raises as the plain import would
        except Exception as e:  # a rewrite that fails must not stop the program
            say_once(f"could not instrument {fullname} ({type(e).__name__}: {e}); it runs as is")
            return super().get_code(fullname)
        self._owner.rewritten.append(fullname)
        return code


_installed: Instrumenter | None = None


def install(
    patterns: Sequence[str] = (), root: str | os.PathLike[str] | None = None
) -> Instrumenter:
    """Rewrite the chosen modules when they are imported from now on (see ``Instrumenter``).

    Modules imported before cannot be rewritten: ``already_imported`` names them.
    """
    global _installed
    uninstall()
    _installed = Instrumenter(patterns, root)
    sys.meta_path.insert(0, _installed)
    return _installed


def uninstall() -> None:
    """Stop rewriting modules (those already rewritten stay so)."""
    global _installed
    if _installed is not None and _installed in sys.meta_path:
        sys.meta_path.remove(_installed)
    _installed = None


def active() -> tuple[tuple[str, ...], str | None] | None:
    """The patterns and root of the modules rewritten from now on (``None``: none are),
    which a ``multiprocessing`` child started now rewrites too (``follow_into_child``)."""
    if _installed is None:
        return None
    return tuple(_installed.patterns), _installed.root


def follow_into_child(patterns: Sequence[str], root: str | None) -> None:
    """Rewrite in this process what the parent rewrites: a spawned ``multiprocessing``
    child, or the forkserver that forks them, before it imports the parent's modules.

    The modules matching ``patterns`` or under ``root`` are rewritten when imported, and so
    is the parent's script when the child runs it again as ``__mp_main__``
    (``multiprocessing.spawn`` runs it with ``runpy.run_path``, which no finder sees). A
    parent run with ``-m`` has its module run again through ``runpy.run_module``, which
    asks the finder (``_RewritingLoader.get_code``).
    """
    import multiprocessing.spawn as spawn

    install(patterns, root)
    original = getattr(spawn, "_fixup_main_from_path")  # noqa: B009  # not in the stubs
    if getattr(original, "tracelens_original", None) is not None:
        return

    def _fixup_main_from_path(main_path: str) -> None:
        current = sys.modules["__main__"]
        name = os.path.splitext(os.path.basename(main_path))[0]
        if name == "ipython" or getattr(current, "__file__", None) == main_path:
            original(main_path)  # as multiprocessing does: nothing to run
            return
        spawn.old_main_modules.append(current)
        mod = types.ModuleType("__mp_main__")
        g = mod.__dict__
        g.update(__file__=main_path, __builtins__=builtins, __loader__=None, __spec__=None)
        g.update(__cached__=None, __package__="")
        saved = sys.modules.get("__mp_main__")
        sys.modules["__mp_main__"] = mod  # its classes and functions pickle by this name
        argv0 = sys.argv[0] if sys.argv else None
        if argv0 is not None:
            sys.argv[0] = main_path  # as runpy.run_path sets it while the script runs
        try:
            run_script(main_path, g)
        except BaseException:
            if saved is None:
                sys.modules.pop("__mp_main__", None)
            else:
                sys.modules["__mp_main__"] = saved
            raise
        finally:
            if argv0 is not None and sys.argv:
                sys.argv[0] = argv0
        sys.modules["__main__"] = mod

    _fixup_main_from_path.tracelens_original = original  # type: ignore[attr-defined]
    setattr(spawn, "_fixup_main_from_path", _fixup_main_from_path)  # noqa: B010


def instrumented() -> list[str]:
    """The modules rewritten so far."""
    return list(_installed.rewritten) if _installed is not None else []


def already_imported(finder: Instrumenter) -> list[str]:
    """Modules already imported that ``finder`` would have rewritten."""
    out = []
    for name, mod in list(sys.modules.items()):
        origin = getattr(mod, "__file__", None)
        if isinstance(mod, types.ModuleType) and name != "__main__" and finder.wants(name, origin):
            out.append(name)
    return sorted(out)


def run_script(path: str, g: dict[str, Any], *, rewritten: bool = True) -> None:
    """Run a script rewritten, as ``runpy.run_path`` runs it (in ``g``, its ``__main__``).

    Args:
        path: The script.
        g: Its globals (``main_namespace``).
        rewritten: ``False`` runs it as it is.

    Raises:
        Whatever the script raises (``SystemExit`` included).
    """
    source = Path(path).read_bytes()
    if not rewritten:
        exec(compile(source, path, "exec", dont_inherit=True), g)
        return
    try:
        code, needs = rewrite(source, path)
    except SyntaxError:
        code, needs = compile(source, path, "exec", dont_inherit=True), {}  # raises as before
    except Exception as e:  # a rewrite that fails must not stop the program
        say_once(f"could not instrument {path} ({type(e).__name__}: {e}); it runs as is")
        code, needs = compile(source, path, "exec", dont_inherit=True), {}
    namespace(needs, g, "__main__")
    exec(code, g)


def main_namespace(path: str) -> tuple[types.ModuleType, dict[str, Any]]:
    """A fresh ``__main__`` module for a script, as runpy makes it."""
    mod = types.ModuleType("__main__")
    g = mod.__dict__
    g.update(__file__=path, __builtins__=builtins, __loader__=None, __spec__=None)
    g["__cached__"] = None
    return mod, g
