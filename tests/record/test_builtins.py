"""Instrumented code records whole-container reads made through builtins (``len``,
``sorted``, ``iter``, truth tests, ``==``, ``sep.join``), the item protocol of dict
subclasses and other mappings, and every deque method, on the C and the Python path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import tracelens
from tests.helpers import read_trace
from tracelens import schema as s
from tracelens.record import instrument, shadow

C = s.Kind.COMMUTING

PRELUDE = """
from collections import deque
from collections.abc import MutableMapping

class Sub(dict):
    pass

class MM(MutableMapping):
    def __init__(self, **kw):
        self.__dict__["_d"] = dict(kw)
    def __getitem__(self, k):
        return self.__dict__["_d"][k]
    def __setitem__(self, k, v):
        self.__dict__["_d"][k] = v
    def __delitem__(self, k):
        del self.__dict__["_d"][k]
    def __iter__(self):
        return iter(list(self.__dict__["_d"]))
    def __len__(self):
        return len(self.__dict__["_d"])
"""


def _run(recording: Any, body: str, setup: str = "") -> tuple[list[tuple[Any, ...]], Any]:
    """Run ``body`` (a function's body, ending in ``return``) rewritten after ``setup``
    (module level, not rewritten); the memory events it recorded, and what it returned."""
    for registry in (shadow._names, shadow._counts, shadow._kept):
        registry.clear()  # so that names start from #1
    g: dict[str, Any] = {"__name__": "prog"}
    exec(compile(PRELUDE + textwrap.dedent(setup), "setup.py", "exec"), g)
    source = "def f():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    code, needs = instrument.rewrite(source, "prog.py")
    instrument.namespace(needs, g, "prog")
    exec(code, g)
    path: Path = recording()
    out = g["f"]()
    tracelens.shutdown()
    events = [(e["event"], e["var"], e.get(s.KIND)) for e in read_trace(path) if "var" in e]
    return events, out


@pytest.mark.parametrize(
    ("call", "result"),
    [
        ("len(d)", 2),
        ("bool(d)", True),
        ("list(d)", ["a", "b"]),
        ("tuple(d)", ("a", "b")),
        ("set(d)", {"a", "b"}),
        ("sorted(d, reverse=True)", ["b", "a"]),
        ("min(d)", "a"),
        ("max(d)", "b"),
        ("any(d)", True),
        ("all(d)", True),
        ("'-'.join(d)", "a-b"),
    ],
)
def test_a_builtin_that_reads_a_whole_dict_reads_its_key_set(recording, call, result):
    """len, bool, list, tuple, set, sorted, min, max, any, all and str.join of a dict
    read its key set once, and return what they return uninstrumented."""
    events, out = _run(recording, f"return {call}", "d = {'a': 1, 'b': 2}")
    assert (events, out) == ([("read", "d", None)], result)


def test_sum_of_a_list_reads_the_list(recording):
    """sum(lst) is one read of the list."""
    events, out = _run(recording, "return sum(lst)", "lst = [1, 2, 3]")
    assert (events, out) == ([("read", "lst", None)], 6)


def test_min_of_several_arguments_reads_no_container(recording):
    """min(a, b) compares its arguments, it does not read them whole: nothing recorded."""
    events, out = _run(recording, "return min(a, b)", "a, b = [1], [2]")
    assert (events, out) == ([], [1])


def test_a_shadowing_len_is_called_unchanged_and_not_recorded(recording):
    """A program's own ``len`` is the one called, with its result, and nothing is recorded."""
    setup = "d = {'a': 1}\ncalls = []\ndef len(x):\n    calls.append(x)\n    return 42"
    events, out = _run(recording, "return len(d), calls", setup)
    assert (events, out) == ([], (42, [{"a": 1}]))


def test_a_fresh_literal_is_not_recorded(recording):
    """len([...]) of a display nobody else holds records nothing."""
    events, out = _run(recording, "return len([1, 2]) + len({3})")
    assert (events, out) == ([], 3)


@pytest.mark.parametrize(
    ("body", "result", "expected"),
    [
        ("if d:\n    return 1\nreturn 0", 1, [("read", "d", None)]),
        (
            "n = 0\nwhile lst:\n    lst.pop()\n    n += 1\nreturn n",
            2,
            [("read", "lst", None), ("write", "lst", None)] * 2 + [("read", "lst", None)],
        ),
        ("return not st", False, [("read", "st", None)]),
        ("return 1 if d and x else 2", 1, [("read", "d", None)]),
    ],
)
def test_a_truth_test_of_a_container_reads_it_whole(recording, body, result, expected):
    """if/while/not/ternary tests of a dict, list or set read its key set (its length)."""
    setup = "d, lst, st, x = {'a': 1}, [1, 2], {1}, 5"
    events, out = _run(recording, body, setup)
    assert (events, out) == (expected, result)


def test_a_truth_test_of_a_non_container_records_nothing(recording):
    """``if x:`` of an int records nothing and keeps its meaning."""
    events, out = _run(recording, "return 1 if x else 2", "x = 0")
    assert (events, out) == ([], 2)


def test_equality_of_two_containers_reads_both(recording):
    """``a == b`` and ``a != b`` of a dict and a list read each one's whole, left then right."""
    events, out = _run(recording, "return a == b, a != b", "a, b = {'k': 1}, [1]")
    assert out == (False, True)
    assert events == [("read", "a", None), ("read", "b", None)] * 2


def test_iter_is_an_interval_read_at_its_start_and_end(recording):
    """``iter(lst)`` reads the list when made and again when used up, as a for loop does."""
    body = "it = iter(lst)\nfirst = next(it)\nlst.insert(0, 9)\nreturn [first, *it]"
    events, out = _run(recording, body, "lst = [1, 2]")
    # the insert is between the iteration's start and its end: the race window
    assert events == [("read", "lst", None), ("write", "lst", None), ("read", "lst", None)]
    assert out == [1, 1, 2]


def test_the_iterators_of_iter_and_reversed_look_like_the_builtins_own(recording):
    """What iter(lst) and reversed(lst) return has the class, isinstance, length hint,
    ``__setstate__`` and pickle of the list's own iterators."""

    body = (
        "it, rev = iter(lst), reversed(lst)\n"
        "rev.__setstate__(1)\n"
        "return (it.__class__, isinstance(rev, type(reversed([]))), operator.length_hint(it),"
        " list(pickle.loads(pickle.dumps(it))), list(rev))"
    )
    events, out = _run(recording, body, "import operator, pickle\nlst = [1, 2, 3]")
    assert out == (type(iter([])), True, 3, [1, 2, 3], [2, 1])
    assert events[:2] == [("read", "lst", None), ("read", "lst", None)]


@pytest.mark.parametrize(
    ("call", "result"),
    [
        ("list(enumerate(lst, 1))", [(1, 5), (2, 6)]),
        ("list(reversed(lst))", [6, 5]),
        ("list(zip(lst, d))", [(5, "a")]),
    ],
)
def test_iterator_builtins_read_at_start_and_end(recording, call, result):
    """enumerate, reversed and zip over containers read each one when they start and when
    the iteration ends; the result is what it is uninstrumented."""
    events, out = _run(recording, f"return {call}", "lst, d = [5, 6], {'a': 1}")
    assert out == result
    reads = [var for op, var, _ in events if op == "read"]
    assert len(reads) == len(events) and all(reads.count(v) == 2 for v in set(reads))


def test_a_join_method_of_another_class_is_called_as_it_is(recording):
    """``o.join(x)`` on an object that is not a str calls its method once, unrecorded."""
    setup = "class J:\n    def join(self, x):\n        return ('J', x)\nj, lst = J(), [1]"
    events, out = _run(recording, "return j.join(lst)", setup)
    assert (events, out) == ([], ("J", [1]))


class TestMappings:
    def test_a_new_key_of_a_dict_subclass_writes_the_key_set(self, recording):
        """An insert into a dict subclass writes the key, then the key set (commuting); a
        store to an existing key writes the key only."""
        events, out = _run(recording, "m['a'] = 2\nm['b'] = 1\nreturn dict(m)", "m = Sub(a=1)")
        assert events == [("write", "m['a']", None), ("write", "m['b']", None), ("write", "m", C)]
        assert out == {"a": 2, "b": 1}

    def test_a_dict_subclass_that_takes_unhashable_keys_still_takes_them(self, recording):
        """A dict subclass whose __setitem__ turns a list key into a tuple gets the store
        as uninstrumented (its storage is not asked with the unhashable key), recorded as
        an insert."""
        setup = (
            "class Keyed(dict):\n"
            "    def __setitem__(self, k, v):\n"
            "        super().__setitem__(tuple(k), v)\n"
            "m = Keyed()"
        )
        events, out = _run(recording, "m[[1, 2]] = 3\nreturn dict(m)", setup)
        assert out == {(1, 2): 3}
        assert [e[0] for e in events] == ["write", "write"] and events[1] == ("write", "m", C)

    def test_a_defaultdict_miss_writes_the_key_and_the_key_set(self, recording):
        """``dd[k]`` and ``dd[k] += 1`` of a defaultdict's missing key insert it: a write
        of the key and of the key set (commuting); of a present key, no key-set write."""
        body = "x = dd['new']\ndd['n'] += 1\ndd['n'] += 1\nreturn dict(dd)"
        events, out = _run(
            recording, body, "from collections import defaultdict\ndd = defaultdict(int)"
        )
        assert out == {"new": 0, "n": 2}
        assert events == [
            ("write", "dd['new']", None),
            ("write", "dd", C),
            ("read", "dd['n']", None),
            ("write", "dd['n']", None),
            ("write", "dd", C),
            ("read", "dd['n']", None),
            ("write", "dd['n']", None),
        ]

    def test_a_store_into_another_mapping_writes_the_key_set(self, recording):
        """A store into a MutableMapping that is not a dict writes the key set each time
        (recorded conservatively: its ``in`` is not asked)."""
        events, out = _run(recording, "m['a'] = 2\nreturn m['a']", "m = MM(a=1)")
        assert events == [("write", "m['a']", None), ("write", "m", C), ("read", "m['a']", None)]
        assert out == 2

    def test_mapping_methods_read_and_write_keys(self, recording):
        """get reads a mapping's key; setdefault and pop write it and the key set; keys
        reads the key set; on a dict subclass and another mapping alike."""
        body = "m.get('a')\nm.setdefault('b', 2)\nm.pop('a')\nm.keys()\nreturn sorted(m.items())"
        for setup in ("m = Sub(a=1)", "m = MM(a=1)"):
            events, out = _run(recording, body, setup)
            assert out == [("b", 2)]
            assert events[:6] == [
                ("read", "m['a']", None),
                ("write", "m['b']", None),
                ("write", "m", C),
                ("write", "m['a']", None),
                ("write", "m", C),
                ("read", "m", None),
            ]

    def test_iterating_a_mapping_reads_its_key_set_at_start_and_end(self, recording):
        """A for loop over a MutableMapping is an interval on its key set."""
        events, out = _run(recording, "return [k for k in m]", "m = MM(a=1, b=2)")
        assert (events, out) == ([("read", "m", None), ("read", "m", None)], ["a", "b"])

    def test_del_of_a_missing_key_of_a_mapping_is_recorded(self, recording):
        """A del that raises KeyError on a MutableMapping writes the key and the key set."""
        body = "try:\n    del m['x']\nexcept KeyError:\n    return 'raised'"
        events, out = _run(recording, body, "m = MM()")
        assert (events, out) == ([("write", "m['x']", None), ("write", "m", C)], "raised")


DEQUE_METHODS = [
    ("q.append(9)", [("write", "q", C)]),
    ("q.appendleft(9)", [("write", "q<left>", None), ("write", "q", C)]),
    ("q.pop()", [("write", "q", None)]),
    ("q.popleft()", [("write", "q<left>", None), ("write", "q", C)]),
    ("q.extend([9])", [("write", "q", C)]),
    ("q.extendleft([9])", [("write", "q<left>", None), ("write", "q", C)]),
    ("q.rotate(1)", [("write", "q", None)]),
    ("q.clear()", [("write", "q", None)]),
    ("q.remove(1)", [("write", "q", None)]),
    ("q.insert(1, 9)", [("write", "q", None)]),
    ("q.index(2)", [("read", "q", None)]),
    ("q.count(2)", [("read", "q", None)]),
    ("q.copy()", [("read", "q", None)]),
    ("q[0]", [("read", "q", None)]),
    ("len(q)", [("read", "q", None)]),
]


@pytest.mark.parametrize(("call", "expected"), DEQUE_METHODS)
def test_every_deque_method_is_recorded(recording, call, expected):
    """Each deque method in instrumented code is a read or write of the deque, the left-end
    ones also of ``q<left>`` (``docs/analysis.md``, *Operations that commute*)."""
    events, out = _run(recording, f"return {call}", "q = deque([1, 2, 3])")
    plain = eval(call, {"q": __import__("collections").deque([1, 2, 3])})
    assert (events, out) == (expected, plain)


COUNTING = """
from collections.abc import MutableMapping

calls = []

class CountingDict(dict):
    def __getitem__(self, k):
        calls.append(("getitem", k))
        return super().__getitem__(k)
    def __contains__(self, k):
        calls.append(("contains", k))
        return super().__contains__(k)
    def __len__(self):
        calls.append(("len",))
        return super().__len__()

class CountingMapping(MutableMapping):
    def __init__(self):
        self.data = {}
    def __getitem__(self, k):
        calls.append(("getitem", k))
        return self.data[k]
    def __setitem__(self, k, v):
        calls.append(("setitem", k))
        self.data[k] = v
    def __delitem__(self, k):
        calls.append(("delitem", k))
        del self.data[k]
    def __iter__(self):
        calls.append(("iter",))
        return iter(list(self.data))
    def __len__(self):
        calls.append(("len",))
        return len(self.data)

def use(m):
    m["a"] = 1
    m["a"] = m["a"] + 1
    x = ("a" in m, m.get("a"), m.get("b"), m.setdefault("c", 3), m.pop("c"), len(m))
    if m:
        x += tuple(k for k in m)
    del m["a"]
    return x, dict(m)

def main():
    out = []
    for cls in (CountingDict, CountingMapping):
        calls.clear()
        out.append((use(cls()), list(calls)))
    return out
"""


def test_mappings_protocol_calls_are_the_programs_own(recording):
    """A dict subclass and a MutableMapping that count their protocol's calls see the same
    calls, in the same order, with the same results, instrumented or not (no second
    ``__getitem__``, no ``__len__`` or ``__contains__`` of tracelens's own)."""
    for registry in (shadow._names, shadow._counts, shadow._kept):
        registry.clear()
    plain: dict[str, Any] = {"__name__": "prog"}
    exec(compile(COUNTING, "prog.py", "exec"), plain)
    code, needs = instrument.rewrite(COUNTING, "prog.py")
    rewritten: dict[str, Any] = {"__name__": "prog"}
    instrument.namespace(needs, rewritten, "prog")
    exec(code, rewritten)
    path = recording()
    got = rewritten["main"]()
    tracelens.shutdown()
    assert got == plain["main"]()
    assert any(e.get("var") == "m['a']" for e in read_trace(path))  # it was recorded
