"""The rewrite changes no result: instrumented code computes what the plain code computes."""

from __future__ import annotations

import textwrap
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelens.record import instrument

KEYS = st.sampled_from(["'a'", "'b'", "'c'", "1", "(1, 2)"])
VALUES = st.integers(-3, 3).map(str)

STATEMENTS = st.one_of(
    st.builds("d[{}] = {}".format, KEYS, VALUES),
    st.builds("d[{0}] = d.get({0}, 0) + {1}".format, KEYS, VALUES),
    st.builds("acc += d.get({}, 0)".format, KEYS),
    st.builds("if {0} in d: del d[{0}]".format, KEYS),
    st.builds("acc += d.setdefault({}, {})".format, KEYS, VALUES),
    st.builds("acc += d.pop({}, 0)".format, KEYS),
    st.builds("if {0} not in d: d[{0}] = 0\nd[{0}] += {1}".format, KEYS, VALUES),
    st.builds("lst.append({})".format, VALUES),
    st.just("if lst: acc += lst.pop()"),
    st.just("acc += len(lst[1:3])"),
    st.builds("lst[0:1] = [{}]".format, VALUES),
    st.builds("o.a = {}".format, VALUES),
    st.builds("o.a += {}".format, VALUES),
    st.just("acc += o.a"),
    st.just("if hasattr(o, 'b'): del o.b"),
    st.builds("o.b = [{}]".format, VALUES),
    st.builds("g += {}".format, VALUES),
    st.just("for k in d: acc += d[k]"),
    st.just("acc += sum(v for v in d.values())"),
    st.just("acc += len([k for k in d if k in d])"),
    st.just("s.add(len(d)); acc += len(s)"),
    st.just("try:\n    acc += d['missing']\nexcept KeyError:\n    acc -= 1"),
    # unpacking, chained, loop and with targets (stores deferred through temporaries)
    st.builds("o.a, d[{}] = {}, {}".format, KEYS, VALUES, VALUES),
    st.builds("i, d[i] = {}, {}".format, VALUES, VALUES),
    st.builds("d[i], i = {}, {}".format, VALUES, VALUES),
    st.builds("[o.a, (g, *lst[0:0])] = [{}, ({}, {}, {})]".format, VALUES, VALUES, VALUES, VALUES),
    st.builds("o.a = d[{}] = g = {}".format, KEYS, VALUES),
    st.just("for o.a in range(3): acc += o.a"),
    st.just("for i, d[i] in enumerate((5, 6)): acc += i"),
    st.just("with C() as o.b: acc += len(o.b)"),
    # builtins that read a whole container, truth tests, ==, join; a shadowing len
    st.just("acc += len(d) + len(lst) + len(s) + bool(d)"),
    st.just("acc += sum(sorted(lst)) + len(list(d)) + len(tuple(s)) + len(set(lst))"),
    st.just("acc += (max(lst) if lst else 0) + (min(lst) if lst else 0)"),
    st.just("acc += any(lst) + all(d) + (not s)"),
    st.just("if d and lst: acc += 1"),
    st.just("while lst and acc < 50: acc += lst.pop()"),
    st.just("acc += (d == {}) + (lst != []) + (s == s) + (d != m)"),
    st.just(
        "names = [str(k) for k in d]\nacc += len(','.join(map(str, lst))) + len('-'.join(names))"
    ),
    st.just("for i, v in enumerate(lst): acc += v + i"),
    st.just("acc += len(list(zip(lst, d, reversed(lst))))"),
    st.just("it = iter(s)\nacc += sum(1 for _ in it)"),
    st.just("acc += len(my_len_module.len_of(lst))"),
    # a dict subclass and a counting MutableMapping through their item protocol
    st.builds("sd[{}] = {}".format, KEYS, VALUES),
    st.builds("m[{}] = {}".format, KEYS, VALUES),
    st.builds("acc += m.get({}, 0) + sd.get({}, 0)".format, KEYS, KEYS),
    st.builds("acc += m.setdefault({0}, 1) + sd.setdefault({0}, 1)".format, KEYS),
    st.builds("acc += m.pop({0}, 0) + sd.pop({0}, 0)".format, KEYS),
    st.builds("if {0} in m: del m[{0}]".format, KEYS),
    st.builds("if {0} not in sd: sd[{0}] = 0\nsd[{0}] += {1}".format, KEYS, VALUES),
    st.just("m.update(sd)"),
    st.just("for k in m: acc += m[k]"),
    st.just("acc += len(m) + len(sd) + bool(m) + len(list(m.items()))"),
    st.just("try:\n    acc += m['missing']\nexcept KeyError:\n    acc -= 1"),
)


def _program(statements: list[str]) -> str:
    body = "\n".join(statements) or "pass"
    return textwrap.dedent(
        """
        from collections.abc import MutableMapping

        g = 0

        class C:
            def __enter__(self):
                return [1, 2]

            def __exit__(self, *exc):
                return False

        class O:
            def __init__(self):
                self.a = 0
                self.__hidden = 1

            def hidden(self):
                return self.__hidden

        class Sub(dict):
            pass

        class Counting(MutableMapping):  # a mapping that counts the calls of its protocol

            def __init__(self):
                self.data, self.calls = {{}}, {{}}

            def _count(self, what):
                self.calls[what] = self.calls.get(what, 0) + 1

            def __getitem__(self, k):
                self._count("getitem")
                return self.data[k]

            def __setitem__(self, k, v):
                self._count("setitem")
                self.data[k] = v

            def __delitem__(self, k):
                self._count("delitem")
                del self.data[k]

            def __iter__(self):
                self._count("iter")
                return iter(list(self.data))

            def __len__(self):
                self._count("len")
                return len(self.data)

        class my_len_module:  # a program's own len, shadowing the builtin in its scope
            @staticmethod
            def len_of(x):
                len = lambda y: [y]  # noqa: E731
                return len(x)

        def f(d, lst, o, s, sd, m):
            global g
            acc = i = 0
        {body}
            return acc + o.hidden()

        def main():
            d, lst, o, s, sd, m = {{}}, [], O(), set(), Sub(), Counting()
            acc = f(d, lst, o, s, sd, m)
            return acc, d, lst, vars(o), g, s, sd, m.data, m.calls
        """
    ).format(body=textwrap.indent(body, "    "))


def _plain(source: str) -> Any:
    g: dict[str, Any] = {"__name__": "prog"}
    exec(compile(source, "prog.py", "exec"), g)
    return g["main"]()


def _rewritten(source: str) -> Any:
    code, needs = instrument.rewrite(source, "prog.py")
    g: dict[str, Any] = {"__name__": "prog"}
    instrument.namespace(needs, g, "prog")
    exec(code, g)
    return g["main"]()


def _standalone(source: str) -> Any:
    g: dict[str, Any] = {"__name__": "prog"}
    exec(instrument.standalone(source, "prog.py"), g)
    return g["main"]()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STATEMENTS, max_size=12))
def test_instrumented_code_computes_what_the_plain_code_computes(statements):
    """Random programs over dicts, lists, sets, attributes, a global, a dict subclass and
    a mapping that counts its protocol's calls give the same results, the same final
    state and the same calls, rewritten or not."""
    source = _program(statements)
    assert _rewritten(source) == _plain(source)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STATEMENTS, max_size=12))
def test_standalone_code_computes_what_the_plain_code_computes(statements):
    """The rewritten code that sets up its own helpers (what ``runpy`` runs for ``-m``)
    gives the plain code's results too."""
    source = _program(statements)
    assert _standalone(source) == _plain(source)


def test_standalone_code_keeps_the_docstring_and_future_imports_first():
    """The helpers' set-up goes after the docstring and ``from __future__`` imports: the
    module keeps its ``__doc__`` and compiles."""
    source = '"""The doc."""\nfrom __future__ import annotations\nd = {}\nd["k"] = 1\n'
    g: dict[str, Any] = {"__name__": "prog"}
    exec(instrument.standalone(source, "prog.py"), g)
    assert (g["__doc__"], g["d"], callable(g["_tl_item_set"])) == ("The doc.", {"k": 1}, True)


def test_a_private_attribute_is_mangled_as_python_mangles_it():
    """``self.__x`` inside a class reaches the mangled attribute ``_C__x``, rewritten too."""
    source = textwrap.dedent(
        """
        class C:
            def __init__(self):
                self.__x = 41

            def bump(self):
                self.__x += 1
                return self.__x

        def main():
            c = C()
            return c.bump(), c._C__x
        """
    )
    assert _rewritten(source) == _plain(source) == (42, 42)


def test_an_exception_from_an_access_is_the_programs():
    """A missing key raises the same ``KeyError`` from rewritten code."""
    source = textwrap.dedent(
        """
        def main():
            try:
                return {}['k']
            except KeyError as e:
                return e.args
        """
    )
    assert _rewritten(source) == _plain(source) == ("k",)


def test_a_new_object_at_a_dead_ones_address_gets_a_new_name():
    """An object that dies takes its name along: the next one never inherits it."""
    import gc

    from tracelens.record import shadow

    class Box:
        pass

    first = Box()
    name = shadow.label_of(first)
    del first
    gc.collect()
    second = Box()
    assert shadow.label_of(second) != name


def test_dicts_the_program_dropped_are_let_go():
    """A dict only the name registry still holds is released as new ones are named."""
    from tracelens.record import shadow

    for _ in range(10):
        shadow.label_of({}, "warm")
    before = shadow.kept()
    for _ in range(100):
        shadow.label_of({}, "temporary")
    assert shadow.kept() <= before + 2


def test_dicts_kept_alive_are_bounded():
    """However many live dicts are named, at most ``MAX_KEPT`` are kept alive."""
    from tracelens.record import shadow

    held = [{} for _ in range(shadow.MAX_KEPT + 50)]
    for d in held:
        shadow.label_of(d, "held")
    assert shadow.kept() <= shadow.MAX_KEPT + 1


def test_a_module_the_rewrite_fails_on_is_imported_as_it_is(tmp_path, monkeypatch, capsys):
    """When the rewrite of a module fails, the module is imported unchanged and one
    stderr line says so."""
    import importlib
    import sys

    (tmp_path / "plainmod.py").write_text("VALUE = 41 + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def broken(source, filename):
        raise RuntimeError("no")

    monkeypatch.setattr(instrument, "rewrite", broken)
    instrument.install(["plainmod"])
    try:
        module = importlib.import_module("plainmod")
    finally:
        instrument.uninstall()
        sys.modules.pop("plainmod", None)
    assert module.VALUE == 42
    assert (
        "could not instrument plainmod (RuntimeError: no); it runs as is" in capsys.readouterr().err
    )


def test_a_missing_global_raises_name_error_as_python_does():
    """Reading or bumping a ``global`` that does not exist raises the same NameError."""
    source = textwrap.dedent(
        """
        def main():
            global missing
            out = []
            for step in ("read", "bump"):
                try:
                    if step == "read":
                        missing
                    else:
                        missing += 1
                except NameError as e:
                    out.append(str(e))
            return out
        """
    )
    assert _rewritten(source) == _plain(source) == ["name 'missing' is not defined"] * 2


def test_a_global_name_that_is_a_builtin_reads_the_builtin():
    """A name declared ``global`` but defined only as a builtin reads the builtin."""
    source = "def main():\n    global len\n    return len([1, 2])\n"
    assert _rewritten(source) == _plain(source) == 2
