"""The C helpers instrumented code calls record exactly what their Python reference records."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracelens
from tracelens.record import _core, instrument, shadow

C = _core.speedups

#: Owners of attributes and items, values of every kind the helpers tell apart.
OWNERS = st.sampled_from(
    [
        "o",
        "p",
        "loc",
        "fake",
        "d",
        "lst",
        "s",
        "tup",
        "text",
        "dq",
        "shared",
        "O",
        "sub",
        "mm",
        "dd",
    ]
)
KEYS = st.sampled_from(["'a'", "'b'", "0", "1", "(1, 'x')", "[1]", "o", "2.5", "None"])
VALUES = st.sampled_from(
    ["1", "-7", "2.5", "'txt'", "'x' * 200", "None", "True", "[1, 2]", "{'k': 1}", "{3}",
     "o", "O", "len", "o.method", "threading", "2**70", "deque([1])", "(1, 2)", "b'b'"]
)  # fmt: skip
ATTRS = st.sampled_from(["a", "b", "__c", "missing"])

STATEMENTS = st.one_of(
    st.builds("x = {}.{}".format, OWNERS, ATTRS),
    st.builds("{}.{} = {}".format, OWNERS, ATTRS, VALUES),
    st.builds("{}.{} += 1".format, OWNERS, ATTRS),
    st.builds("del {}.{}".format, OWNERS, ATTRS),
    st.builds("x = {}[{}]".format, OWNERS, KEYS),
    st.builds("{}[{}] = {}".format, OWNERS, KEYS, VALUES),
    st.builds("{}[{}] += 1".format, OWNERS, KEYS),
    st.builds("del {}[{}]".format, OWNERS, KEYS),
    st.builds("x = {} in {}".format, KEYS, OWNERS),
    st.builds("x = {} not in {}".format, KEYS, OWNERS),
    st.builds("g = {}".format, VALUES),
    st.just("g += 1"),
    st.just("x = g"),
    st.just("x = undefined_name"),
    st.just("x = len"),
    st.builds("x = d.get({})".format, KEYS),
    st.builds("x = d.setdefault({}, {})".format, KEYS, VALUES),
    st.builds("x = d.pop({})".format, KEYS),
    st.builds("x = {}.pop()".format, OWNERS),
    st.builds("x = {}.popitem()".format, OWNERS),
    st.builds("{}.update({{{}: 1}})".format, OWNERS, KEYS),
    st.builds("{}.append({})".format, OWNERS, VALUES),
    st.builds("{}.remove({})".format, OWNERS, VALUES),
    st.builds("{}.add({})".format, OWNERS, VALUES),
    st.builds("{}.discard({})".format, OWNERS, VALUES),
    st.builds("{}.appendleft({})".format, OWNERS, VALUES),
    st.builds("x = {}.popleft()".format, OWNERS),
    st.builds("{}.extendleft([{}])".format, OWNERS, VALUES),
    st.builds("{}.extend([{}])".format, OWNERS, VALUES),
    st.builds("x = {}.count({})".format, OWNERS, VALUES),
    st.builds("x = {}.keys()".format, OWNERS),
    st.builds("{}.sort(key=str, reverse=True)".format, OWNERS),
    st.builds("{}.clear()".format, OWNERS),
    st.just("x = o.method()"),
    st.builds("x = {}.get({})".format, OWNERS, KEYS),
    st.builds("x = {}.setdefault({}, 1)".format, OWNERS, KEYS),
    st.builds("x = {}.pop({}, None)".format, OWNERS, KEYS),
    st.builds(
        "x = {}({})".format, st.sampled_from(["len", "bool", "sorted", "list", "sum"]), OWNERS
    ),
    st.builds(
        "x = list({}({}))".format, st.sampled_from(["iter", "enumerate", "reversed"]), OWNERS
    ),
    st.builds("x = list(zip({}, {}))".format, OWNERS, OWNERS),
    st.builds("x = {} == {}".format, OWNERS, OWNERS),
    st.builds("x = 1 if {} else 2".format, OWNERS),
    st.builds("x = ','.join({})".format, OWNERS),
    st.builds("for k in {}: x = k".format, OWNERS),
)


def _program(statements: list[str]) -> str:
    body = "\n".join(f"try:\n    {s}\nexcept Exception:\n    pass" for s in statements)
    return textwrap.dedent(
        """
        import threading
        from collections import defaultdict, deque
        from collections.abc import MutableMapping

        g = 0
        shared = {{"a": 1}}

        class O:
            def __init__(self):
                self.a = 0
                self.__c = 1

            def method(self):
                return self.__c

        class Sub(dict):
            pass

        class MM(MutableMapping):
            def __init__(self):
                self.data = {{"a": 1}}
            def __getitem__(self, k):
                return self.data[k]
            def __setitem__(self, k, v):
                self.data[k] = v
            def __delitem__(self, k):
                del self.data[k]
            def __iter__(self):
                return iter(self.data)
            def __len__(self):
                return len(self.data)

        class Fake:  # says it is a threading.local, and isinstance believes it

            @property
            def __class__(self):
                return threading.local

        def f():
            global g
            o, p, loc, fake = O(), O(), threading.local(), Fake()
            d, lst, s, dq = {{"a": 1}}, [1, 2], {{1}}, deque([1, 2])
            tup, text = (1, 2), "ab"
            sub, mm, dd = Sub(a=1), MM(), defaultdict(int, a=1)
            x = None
        {body}
            return x

        f()
        """
    ).format(body=textwrap.indent(body, "    "))


def _events(path: Path) -> list[tuple[Any, ...]]:
    """The memory events of a trace, with sequence numbers counted from the first and
    object addresses left out (each run has its own objects)."""
    out = []
    first = None
    for line in path.read_bytes().splitlines():
        e = orjson.loads(line)
        if e["event"] not in ("read", "write"):
            continue
        first = e["seq"] if first is None else first
        value = e.get("value", "<none>")
        if isinstance(value, str):
            value = re.sub("0x[0-9a-f]+", "0x?", value)
        out.append((e["seq"] - first, e["event"], e["var"], value, e.get("kind"), e["line"]))
    return out


def _run(source: str, path: Path, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a rewritten program on the C helpers or on the Python ones; its events."""
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(_core, "speedups", None)
            m.setattr(shadow, "record", _core.py_record)
        for registry in (shadow._names, shadow._counts, shadow._kept):
            registry.clear()  # so that both runs name their objects alike
        code, needs = instrument.rewrite(source, "prog.py")
        g: dict[str, Any] = {"__name__": "prog"}
        instrument.namespace(needs, g, "prog")
        tracelens.configure(path)
        try:
            exec(code, g)
        finally:
            tracelens.shutdown()
    return _events(path)


@pytest.mark.skipif(C is None, reason="the C accelerator is not built or is switched off")
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(statements=st.lists(STATEMENTS, min_size=1, max_size=10))
def test_the_c_helpers_record_the_events_the_python_helpers_record(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    recorder_path: str,
    statements: list[str],
) -> None:
    """For any program of attribute, item and global accesses, the C and the Python
    helpers record the same events in the same order, on the same lines and values."""
    if recorder_path == "python":
        pytest.skip("this test switches between the two paths itself")
    source = _program(statements)
    d = tmp_path_factory.mktemp("twins")
    c_events = _run(source, d / "c.jsonl", True, monkeypatch)
    py_events = _run(source, d / "py.jsonl", False, monkeypatch)
    assert c_events == py_events
    assert c_events  # the program's own objects are always written


@pytest.mark.skipif(C is None, reason="the C accelerator is not built or is switched off")
def test_the_compiled_helpers_are_the_c_ones(recorder_path: str) -> None:
    """With the accelerator in use, attribute, item, global and method helpers, and the
    gates of builtins, truth tests and ==, are C objects."""
    if recorder_path == "python":
        pytest.skip("the pure-Python path makes Python helpers")
    needs = {
        "_tl_get_a": ("attr", "get", "a", "a"),
        "_tl_item_get": ("item", "get"),
        "_tl_item_iter": ("item", "iter"),
        "_tl_g_load": ("global", "load"),
        "_tl_m_append": ("method", "append"),
        "_tl_truth": ("truth",),
        "_tl_eq": ("compare", "eq"),
        "_tl_b_len": ("builtin", "len"),
        "_tl_join": ("join",),
    }
    made = shadow.helpers(needs, {}, "m")
    for gate in ("_tl_truth", "_tl_eq", "_tl_b_len", "_tl_join"):  # C on non-containers
        assert type(made[gate]).__module__ == "tracelens.record._speedups"
    assert type(made["_tl_get_a"]).__module__ == "tracelens.record._speedups"
    assert type(made["_tl_item_get"]).__module__ == "tracelens.record._speedups"
    assert type(made["_tl_g_load"]).__module__ == "tracelens.record._speedups"
    assert type(made["_tl_m_append"]).__module__ == "tracelens.record._speedups"
    assert made["_tl_item_iter"] is shadow._iterate  # iteration stays in Python


@pytest.mark.skipif(C is None, reason="the C accelerator is not built or is switched off")
def test_a_type_added_to_the_proxies_after_it_was_seen_is_no_longer_recorded(
    tmp_path: Path, recorder_path: str
) -> None:
    """The C helpers' cache of which types are proxies follows ``_PROXIES`` as it grows:
    an attribute of a type recorded before it became a proxy type is not recorded after."""
    if recorder_path == "python":
        pytest.skip("the C helpers' cache")
    assert C is not None

    class Owner:
        def __init__(self) -> None:
            self.a = 1

    get = C.helper("attr_get", "a", "a", None, None)
    o = Owner()
    tracelens.configure(tmp_path / "t.jsonl")
    try:
        assert get(o) == 1
        shadow._PROXIES.add(Owner)
        try:
            assert get(o) == 1
        finally:
            shadow._PROXIES.discard(Owner)
    finally:
        tracelens.shutdown()
    (only,) = [e[2] for e in _events(tmp_path / "t.jsonl")]
    assert only.endswith("<locals>.Owner.a")
