"""watch_attrs and shared-state shapes: attributes, key sets, lists, sets, unsafe reprs."""

from __future__ import annotations

import pickle
import threading

import pytest

import tracelens
from tests.helpers import read_trace
from tracelens.record.attrs import watch_attrs

T = 5


def _mem(path):
    return [(e["event"], e["var"], e.get("value")) for e in read_trace(path) if "var" in e]


class Counter:
    limit = 10  # a class-level default, read through self

    def __init__(self):
        self.count = 0

    def bump(self):
        self.count += 1

    @property
    def doubled(self):
        return self.count * 2


class TestWatchAttrs:
    def test_the_objects_own_methods_are_recorded(self, recording):
        """self.count += 1 inside a method is a read then a write of name.count."""
        path = recording()
        c = watch_attrs(Counter(), "ctr")
        c.bump()
        tracelens.shutdown()

        assert _mem(path) == [("read", "ctr.count", 0), ("write", "ctr.count", 1)]

    def test_methods_properties_and_dunders_are_not_events(self, recording):
        """Looking up a method or a dunder records nothing; a property's own reads do."""
        path = recording()
        c = watch_attrs(Counter(), "ctr")
        _ = c.bump, c.__class__, c.__dict__
        assert c.doubled == 0
        tracelens.shutdown()

        assert _mem(path) == [("read", "ctr.count", 0)]

    def test_class_level_default_read_through_self_is_a_read(self, recording):
        """A class attribute that is a plain value is read as name.attr."""
        path = recording()
        c = watch_attrs(Counter(), "ctr")
        assert c.limit == 10
        tracelens.shutdown()

        assert _mem(path) == [("read", "ctr.limit", 10)]

    def test_the_object_keeps_its_type_and_state(self, recording):
        """isinstance, the class name, vars() and behaviour are unchanged."""
        recording()
        c = Counter()
        before = dict(vars(c))
        assert watch_attrs(c, "ctr") is c
        assert isinstance(c, Counter) and type(c).__name__ == "Counter"
        assert before == vars(c)
        c.bump()
        assert c.count == 1

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_a_watched_object_pickles_as_an_object_of_its_own_class(self, recording, protocol):
        """Pickling gives back a plain instance of the class, with the object's state."""
        recording()
        c = watch_attrs(Counter(), "ctr")
        c.bump()
        back = pickle.loads(pickle.dumps(c, protocol))
        assert (type(back), vars(back)) == (Counter, {"count": 1})

    def test_builtin_containers_are_refused_with_a_hint(self, recording):
        """A dict's class cannot be changed: the error points to watch()."""
        recording()
        with pytest.raises(TypeError, match="watch"):
            watch_attrs({}, "d")

    def test_decorator_records_every_instance_as_its_own_variable(self, recording):
        """@watch_attrs("name"): the first instance is name, the next name#2."""

        @watch_attrs("pool")
        class Pool:
            def __init__(self):
                self.size = 0

            def grow(self):
                self.size += 1

        path = recording()
        a, b = Pool(), Pool()
        a.grow()
        b.grow()
        tracelens.shutdown()

        assert _mem(path) == [
            ("write", "pool.size", 0),
            ("write", "pool#2.size", 0),
            ("read", "pool.size", 0),
            ("write", "pool.size", 1),
            ("read", "pool#2.size", 0),
            ("write", "pool#2.size", 1),
        ]

    def test_slotted_class(self, recording):
        """Slots are data attributes too."""

        class P:
            __slots__ = ("x",)

            def __init__(self):
                self.x = 1

        path = recording()
        p = watch_attrs(P(), "p")
        p.x += 1
        tracelens.shutdown()

        assert _mem(path) == [("read", "p.x", 1), ("write", "p.x", 2)]

    def test_nothing_is_recorded_when_not_configured(self, tmp_path):
        """A watched object works, silently, without configure()."""
        c = watch_attrs(Counter(), "ctr")
        c.bump()
        assert c.count == 1

    def test_racing_methods_show_interleaved_read_write_pairs(self, recording):
        """Two threads bumping one object record a read and a write per bump, per thread."""
        path = recording(stress=True)
        c = watch_attrs(Counter(), "ctr")

        def work():
            for _ in range(200):
                c.bump()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T)
        tracelens.shutdown()

        events = [e for e in read_trace(path) if e.get("var") == "ctr.count"]
        assert len(events) == 800
        assert len({e["unit"] for e in events}) == 2 and "t0" not in {e["unit"] for e in events}


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def test_value_with_a_raising_repr_is_described_not_repred(recording):
    """Writing an object whose __repr__ raises records its type, and nothing raises."""
    path = recording()
    d = tracelens.watch({}, "d")
    d["k"] = Unprintable()
    c = watch_attrs(Counter(), "ctr")
    c.count = Unprintable()
    tracelens.shutdown()

    values = [v for _, var, v in _mem(path) if var in ("d['k']", "ctr.count")]
    assert len(values) == 2
    assert all(v.startswith("<") and "Unprintable" in v for v in values)


class TestSharedContainers:
    def test_iterating_while_another_thread_inserts_races_on_the_key_set(self, recording):
        """Insert writes the key set d, iteration reads it: two units, a write and a read."""
        path = recording()
        d = tracelens.watch({}, "d")
        t = threading.Thread(target=lambda: d.__setitem__("new", 1))
        t.start()
        t.join(T)
        for _ in d:
            pass
        tracelens.shutdown()

        whole = [(e["event"], e["unit"]) for e in read_trace(path) if e.get("var") == "d"]
        assert [op for op, _ in whole] == ["write", "read"]
        assert whole[0][1] != whole[1][1] == "t0"

    def test_list_is_one_variable(self, recording):
        """append and indexing are a write and a read of the list's one variable."""
        path = recording()
        xs = tracelens.watch([], "xs")
        xs.append(1)
        assert xs[0] == 1
        tracelens.shutdown()

        assert _mem(path) == [("write", "xs", None), ("read", "xs", 1)]

    def test_set_is_like_a_key_set(self, recording):
        """add writes the set, membership and iteration read it."""
        path = recording()
        s = tracelens.watch(set(), "s")
        s.add(1)
        assert 1 in s
        for _ in s:
            pass
        tracelens.shutdown()

        assert [op for op, var, _ in _mem(path) if var == "s"] == ["write", "read", "read"]
