"""watch(): the proxies behave like the objects they wrap and record every access."""

from __future__ import annotations

import copy
import json
import pickle
import threading
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracelens
from tests.helpers import read_trace
from tracelens import schema as s


def _ops(path):
    return [(e["event"], e.get("var"), e.get("value")) for e in read_trace(path) if "var" in e]


class TestWatchedDictRecords:
    def test_augmented_assignment_is_a_read_then_a_write(self, recording):
        """`d[k] += 1` records a read of d[k] with the old value, then a write with the new."""
        path = recording()
        d = tracelens.watch({"n": 1}, "d")
        d["n"] += 1
        tracelens.shutdown()

        assert _ops(path) == [("read", "d['n']", 1), ("write", "d['n']", 2)]

    def test_inserting_a_key_also_writes_the_key_set(self, recording):
        """A new key writes the item and the dict's key set `d`."""
        path = recording()
        d = tracelens.watch({}, "d")
        d["k"] = 1
        tracelens.shutdown()

        assert _ops(path) == [("write", "d['k']", 1), ("write", "d", None)]

    def test_overwriting_a_key_does_not_write_the_key_set(self, recording):
        """Assigning an existing key changes the item only."""
        path = recording()
        d = tracelens.watch({"k": 0}, "d")
        d["k"] = 1
        tracelens.shutdown()

        assert _ops(path) == [("write", "d['k']", 1)]

    def test_iteration_reads_the_key_set(self, recording):
        """Iterating a watched dict is a read of `d` (so it races with inserts)."""
        path = recording()
        d = tracelens.watch({"a": 1, "b": 2}, "d")
        keys = [k for k in d]
        tracelens.shutdown()

        assert keys == ["a", "b"]
        assert _ops(path) == [("read", "d", None)]

    @pytest.mark.parametrize(
        ("action", "expected"),
        [
            # `in` reads the item's presence
            (lambda d: "a" in d, [("read", "d['a']", None)]),
            # get() of a missing key reads it as missing
            (lambda d: d.get("zz"), [("read", "d['zz']", "<missing>")]),
            # setdefault() of a missing key inserts: item and key set written
            (lambda d: d.setdefault("n", 5), [("write", "d['n']", 5), ("write", "d", None)]),
            # setdefault() of a present key only reads it
            (lambda d: d.setdefault("a", 5), [("read", "d['a']", 1)]),
            # pop() deletes: item and key set written
            (lambda d: d.pop("a"), [("write", "d['a']", "<missing>"), ("write", "d", None)]),
            # update() writes every key it sets
            (lambda d: d.update(a=2), [("write", "d['a']", 2)]),
            # len() reads the key set
            (lambda d: len(d), [("read", "d", None)]),
        ],
    )
    def test_dict_method_records(self, recording, action, expected):
        """Each dict method records the accesses it makes."""
        path = recording()
        d = tracelens.watch({"a": 1}, "d")
        action(d)
        tracelens.shutdown()

        assert expected == _ops(path)

    def test_del_records_a_write_of_item_and_key_set(self, recording):
        """`del d[k]` writes the item and the key set."""
        path = recording()
        d = tracelens.watch({"a": 1}, "d")
        del d["a"]
        tracelens.shutdown()

        assert _ops(path) == [("write", "d['a']", "<missing>"), ("write", "d", None)]

    def test_missing_key_raises_keyerror_and_records_the_read(self, recording):
        """A KeyError passes through, and the failed read is still recorded."""
        path = recording()
        d = tracelens.watch({}, "d")
        with pytest.raises(KeyError):
            d["nope"]
        tracelens.shutdown()

        assert _ops(path) == [("read", "d['nope']", "<missing>")]

    def test_call_site_is_the_users_line(self, recording):
        """Events name the file, line and function of the user's code."""
        path = recording()
        d = tracelens.watch({"a": 1}, "d")
        d["a"]
        line = __import__("inspect").currentframe().f_lineno - 1
        tracelens.shutdown()

        (ev,) = [e for e in read_trace(path) if e.get("var") == "d['a']"]
        assert (__file__, line, "test_call_site_is_the_users_line") == (
            ev["file"],
            ev["line"],
            ev["func"],
        )


class TestProxyBehavesLikeTheObject:
    def test_watched_dict_is_a_dict(self):
        """isinstance, equality, repr and len are the wrapped dict's."""
        d = tracelens.watch({"a": 1}, "d")

        assert isinstance(d, dict)
        assert d == {"a": 1}
        assert repr({"a": 1}) == repr(d)
        assert len(d) == 1

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["set", "del", "get", "pop", "setdefault", "in", "update"]),
                st.sampled_from(["a", "b", "c", 1]),
                st.integers(-3, 3),
            ),
            max_size=30,
        )
    )
    def test_watched_dict_behaves_like_dict(self, ops):
        """Any sequence of operations gives the same results and final state as on a dict."""
        plain: dict = {}
        watched = tracelens.watch({}, "d")

        def apply(d, op, k, v):
            try:
                if op == "set":
                    d[k] = v
                    return None
                if op == "del":
                    del d[k]
                    return None
                if op == "get":
                    return d.get(k, "dflt")
                if op == "pop":
                    return d.pop(k)
                if op == "setdefault":
                    return d.setdefault(k, v)
                if op == "in":
                    return k in d
                d.update({k: v})
                return None
            except KeyError as exc:
                return ("KeyError", exc.args)

        for op, k, v in ops:
            assert apply(plain, op, k, v) == apply(watched, op, k, v)
        assert plain == watched
        assert list(plain.items()) == list(watched.items())

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["append", "pop", "insert", "set", "extend", "remove", "iadd"]),
                st.integers(-3, 3),
            ),
            max_size=30,
        )
    )
    def test_watched_list_behaves_like_list(self, ops):
        """Any sequence of list operations gives the same results and state as on a list."""
        plain: list = []
        watched = tracelens.watch([], "l")

        def apply(lst, op, v):
            try:
                if op == "append":
                    lst.append(v)
                elif op == "pop":
                    return lst.pop()
                elif op == "insert":
                    lst.insert(v, v)
                elif op == "set":
                    lst[v] = v
                elif op == "extend":
                    lst.extend([v, v])
                elif op == "remove":
                    lst.remove(v)
                else:
                    lst += [v]
                return None
            except (IndexError, ValueError) as exc:
                return type(exc).__name__

        for op, v in ops:
            assert apply(plain, op, v) == apply(watched, op, v)
        assert plain == watched
        assert len(plain) == len(watched)

    def test_watched_object_attributes(self, recording):
        """Attribute reads and writes through the proxy are `name.attr` events."""
        path = recording()

        class Model:
            def __init__(self):
                self.weight = 1.0

            def bump(self):
                return "method"

        m = tracelens.watch(Model(), "model")
        m.weight += 0.5
        assert m.bump() == "method"
        assert isinstance(m, Model)
        tracelens.shutdown()

        assert _ops(path) == [("read", "model.weight", 1.0), ("write", "model.weight", 1.5)]

    def test_missing_attribute_raises_attributeerror(self):
        """AttributeError passes through a watched object."""
        m = tracelens.watch(object(), "o")

        with pytest.raises(AttributeError):
            m.nothing  # noqa: B018

    def test_list_is_one_variable(self, recording):
        """Every access to a watched list is on the variable `name`."""
        path = recording()
        lst = tracelens.watch([1, 2], "items")
        lst.append(3)
        lst[0]
        tracelens.shutdown()

        assert _ops(path) == [("write", "items", None), ("read", "items", 1)]

    def test_container_values_are_described_not_repred(self, recording):
        """A non-scalar value is recorded as its type and size, never by calling its repr."""
        path = recording()

        class Loud:
            def __repr__(self):
                raise RuntimeError("boom")

        d = tracelens.watch({}, "d")
        d["x"] = [1, 2, 3]
        d["y"] = Loud()
        tracelens.shutdown()

        values = [v for _, var, v in _ops(path) if var in ("d['x']", "d['y']")]
        assert values[0] == "<list len=3>"
        assert values[1].startswith("<tests.record.test_watch.") or "Loud object at" in values[1]

    def test_long_strings_are_bounded(self, recording):
        """String values are cut to a bounded length."""
        path = recording()
        d = tracelens.watch({}, "d")
        d["s"] = "x" * 10_000
        tracelens.shutdown()

        (value,) = [v for op, var, v in _ops(path) if var == "d['s']"]
        assert len(value) <= 120
        assert value.endswith("\u2026")


def test_manual_read_and_write(recording):
    """tracelens.read/write record events on the named variable."""
    path = recording()
    tracelens.write("counter", 3)
    tracelens.read("counter", 3)
    tracelens.read("flag")
    tracelens.shutdown()

    assert _ops(path) == [("write", "counter", 3), ("read", "counter", 3), ("read", "flag", None)]


def test_atomic_region_brackets_its_accesses(recording):
    """`with tracelens.atomic(name)` records begin and end around the accesses inside."""
    path = recording()
    d = tracelens.watch({"n": 0}, "d")
    with tracelens.atomic("bump"):
        d["n"] += 1
    tracelens.shutdown()

    events = [(e["event"], e.get("obj") or e.get("var")) for e in read_trace(path)]
    assert [ev for ev in events if ev[0] != "meta"] == [
        ("atomic_begin", "bump"),
        ("read", "d['n']"),
        ("write", "d['n']"),
        ("atomic_end", "bump"),
    ]


def test_watch_needs_a_name():
    """A missing name is a clear TypeError."""
    with pytest.raises(TypeError, match="name"):
        tracelens.watch({}, "")


class _Registry(__import__("collections").abc.MutableMapping):
    """A MutableMapping subclass, as libraries write them (not a dict)."""

    def __init__(self):
        self._data = {}

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value):
        self._data[key] = value

    def __delitem__(self, key):
        del self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


class TestWatchedProtocols:
    def test_a_mutable_mapping_subclass_is_proxied_through_its_items(self, recording):
        """A watched MutableMapping keeps working and records its item writes and reads."""
        path = recording()
        r = tracelens.watch(_Registry(), "r")
        r["a"] = 1
        value = r["a"]
        tracelens.shutdown()

        assert value == 1
        assert _ops(path) == [("write", "r['a']", 1), ("write", "r", None), ("read", "r['a']", 1)]

    def test_a_del_that_raises_is_recorded_before_it_raises(self, recording):
        """``del d[k]`` of a missing key records its write, then raises KeyError as before."""
        path = recording()
        d = tracelens.watch({}, "d")
        with pytest.raises(KeyError):
            del d["gone"]
        tracelens.shutdown()

        assert _ops(path) == [("write", "d['gone']", "<missing>")]

    def test_an_immutable_value_is_returned_as_is_with_one_line_on_stderr(self, recording, capsys):
        """watch() of a tuple returns the tuple itself and says why on stderr."""
        recording()
        t = (1, 2)
        assert tracelens.watch(t, "pair") is t
        tracelens.shutdown()

        assert "watch('pair'): a tuple never changes" in capsys.readouterr().err


@pytest.mark.parametrize("value", [{"a": 1, "b": [2]}, [1, "x"], {1, 2}])
def test_a_watched_container_pickles_as_the_container_it_wraps(recording, value):
    """pickle.dumps of a proxy gives the plain container back, equal to the original."""
    recording()
    back = pickle.loads(pickle.dumps(tracelens.watch(value, "v")))
    assert (type(back), back) == (type(value), value)


@pytest.mark.parametrize("value", [{"a": 1, "b": [2]}, [1, "x"]])
def test_json_dumps_writes_a_watched_container_as_the_container(recording, value):
    """json.dumps (C encoder and indented Python one) writes a proxy as its container."""
    recording()
    w = tracelens.watch(value, "v")
    assert (json.dumps(w), json.dumps({"k": w}, indent=1)) == (
        json.dumps(value),
        json.dumps({"k": value}, indent=1),
    )


def test_json_dumps_still_refuses_other_objects_while_watching(recording):
    """The taught encoder raises the standard TypeError for an object that is not a proxy."""
    recording()
    tracelens.watch({}, "v")
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps(object())


def test_a_copy_of_a_watched_container_is_a_plain_equal_container(recording):
    """copy.copy and copy.deepcopy of a proxy give unwatched containers with the same items."""
    recording()
    w = tracelens.watch({"a": [1]}, "v")
    assert [(type(c), c) for c in (copy.copy(w), copy.deepcopy(w))] == [(dict, {"a": [1]})] * 2


class TestWatchedDeque:
    def test_a_watched_deque_has_the_whole_deque_api(self, recording):
        """watch(deque(...)) has every public method of a deque, and no list-only one."""
        recording()
        q = tracelens.watch(deque([1, 2]), "q")
        public = {n for n in dir(deque) if not n.startswith("_")}
        assert {n for n in public if hasattr(q, n)} == public
        assert not hasattr(q, "sort")
        assert isinstance(q, deque) and q.maxlen is None

    def test_a_watched_deque_computes_what_the_deque_computes(self, recording):
        """Each deque method on the proxy returns and leaves what it does on a deque."""
        recording()
        calls = [
            ("append", (3,)), ("appendleft", (0,)), ("extend", ([4, 5],)),
            ("extendleft", ([-1],)), ("rotate", (2,)), ("pop", ()), ("popleft", ()),
            ("insert", (1, 9)), ("remove", (9,)), ("index", (2,)), ("count", (1,)),
            ("copy", ()), ("reverse", ()),
        ]  # fmt: skip
        plain, q = deque([1, 2]), tracelens.watch(deque([1, 2]), "q")
        for name, args in calls:
            assert getattr(q, name)(*args) == getattr(plain, name)(*args), name
        assert (list(q), q[0], len(q), 1 in q) == (list(plain), plain[0], len(plain), 1 in plain)

    def test_left_end_methods_write_the_left_end_and_the_deque_commuting(self, recording):
        """popleft/appendleft write q<left> and q (commuting); append writes q commuting."""
        path = recording()
        q = tracelens.watch(deque([1, 2]), "q")
        q.popleft()
        q.appendleft(0)
        q.append(3)
        q.rotate(1)
        tracelens.shutdown()
        c = s.Kind.COMMUTING
        assert [(e["event"], e["var"], e.get(s.KIND)) for e in read_trace(path) if "var" in e] == [
            ("write", "q<left>", None),
            ("write", "q", c),
            ("write", "q<left>", None),
            ("write", "q", c),
            ("write", "q", c),
            ("write", "q", None),
        ]

    def test_a_popleft_of_an_empty_deque_reads_it_and_raises(self, recording):
        """popleft() of an empty watched deque raises IndexError as a deque does, recorded
        as a read of it (it observed the length)."""
        path = recording()
        q = tracelens.watch(deque(), "q")
        with pytest.raises(IndexError):
            q.popleft()
        tracelens.shutdown()
        assert [(e["event"], e["var"]) for e in read_trace(path) if "var" in e] == [("read", "q")]

    @pytest.mark.parametrize(
        ("worker", "race"),
        [("q.popleft()", "q<left>"), ("q.append(1) if i else q.popleft()", None)],
    )
    def test_two_poplefts_race_and_append_with_popleft_does_not(self, tmp_path, worker, race):
        """Two threads popleft-ing one watched deque race on its left end; an append
        racing with a popleft (opposite ends) does not."""
        from tracelens.analyze import analyze, load

        path = tmp_path / "t.jsonl"
        tracelens.configure(path)
        q = tracelens.watch(deque(range(10)), "q")
        ts = [threading.Thread(target=lambda i=i: eval(worker, {"q": q, "i": i})) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        tracelens.shutdown()
        found = {(f.kind, v) for f in analyze(load(path)).findings for v in f.variables}
        if race is None:
            assert found == set()
        else:
            assert ("data_race", race) in found
