"""Locks and threads: configure() instruments them so that seq order respects happens-before."""

from __future__ import annotations

import _thread
import sys
import threading

import pytest

import tracelens
from tests.helpers import read_trace


def _sync(path, *ops):
    return [e for e in read_trace(path) if e["event"] in ops and not e.get("internal")]


class TestLocks:
    def test_release_is_recorded_before_the_next_acquire(self, recording):
        """Across threads, every release has a smaller seq than the acquire that follows it."""
        path = recording()
        lock = threading.Lock()
        counter = tracelens.watch({"n": 0}, "c")

        def work():
            for _ in range(200):
                with lock:
                    counter["n"] += 1

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tracelens.shutdown()

        events = _sync(path, "acquire", "release")
        ops = [e["event"] for e in events]
        assert len(ops) == 1600
        assert ops == ["acquire", "release"] * 800  # strictly alternating in seq order
        holders = [e["unit"] for e in events]
        assert holders[0::2] == holders[1::2]  # each release by the thread that acquired

    def test_lock_identity_names_kind_and_creation_site(self, recording):
        """A lock is named Lock@file:line#n after the line that created it."""
        path = recording()
        lock = threading.Lock()
        line = __import__("inspect").currentframe().f_lineno - 1
        with lock:
            pass
        tracelens.shutdown()

        (acq,) = _sync(path, "acquire")
        assert acq["obj"].startswith(f"Lock@test_locks_threads.py:{line}#")
        assert acq["kind"] == "lock"

    @pytest.mark.parametrize(
        "factory",
        [
            lambda: threading.Lock(),  # the usual way
            lambda: _thread.allocate_lock(),  # libraries that go to _thread directly
            pytest.param(
                lambda: _thread.LockType(),  # ...or construct the type, where Python allows it
                marks=pytest.mark.skipif(
                    sys.version_info < (3, 13), reason="the lock type is instantiable from 3.13"
                ),
            ),
        ],
    )
    def test_every_lock_factory_is_recorded(self, recording, factory):
        """Locks made through threading or _thread after configure() are recorded."""
        path = recording()
        lock = factory()
        lock.acquire()
        lock.release()
        tracelens.shutdown()

        assert [e["event"] for e in _sync(path, "acquire", "release")] == ["acquire", "release"]

    def test_rlock_records_only_the_outermost_acquire_and_release(self, recording):
        """Re-entering an RLock is not an event; the first acquire and the last release are."""
        path = recording()
        for factory in (threading.RLock, _thread.RLock):
            lock = factory()
            with lock, lock, lock:
                pass
        tracelens.shutdown()

        events = _sync(path, "acquire", "release")
        assert [e["event"] for e in events] == ["acquire", "release"] * 2
        assert {"rlock"} == {e["kind"] for e in events}

    def test_blocking_acquire_records_the_attempt_first(self, recording):
        """An acquire that has to wait records acquire_try before it blocks, then its wait time."""
        path = recording()
        lock = threading.Lock()
        lock.acquire()
        waiting = threading.Event()

        def waiter():
            waiting.set()
            with lock:
                pass

        t = threading.Thread(target=waiter)
        t.start()
        waiting.wait(5)
        # Give the waiter time to block; the order below holds either way.
        threading.Event().wait(0.05)
        lock.release()
        t.join(5)
        tracelens.shutdown()

        mine = [e for e in _sync(path, "acquire_try", "acquire", "release") if e["unit"] != "t0"]
        assert [e["event"] for e in mine] == ["acquire_try", "acquire", "release"]
        assert mine[1]["wait_ns"] > 0

    def test_failed_timed_acquire_is_recorded(self, recording):
        """A timed acquire that gives up records acquire_try then acquire_fail."""
        path = recording()
        lock = threading.Lock()
        lock.acquire()
        ok = []
        t = threading.Thread(target=lambda: ok.append(lock.acquire(timeout=0.01)))
        t.start()
        t.join(5)
        lock.release()
        tracelens.shutdown()

        assert ok == [False]
        mine = [e["event"] for e in _sync(path, "acquire_try", "acquire_fail") if e["unit"] != "t0"]
        assert mine == ["acquire_try", "acquire_fail"]

    def test_condition_works_on_recorded_locks(self, recording):
        """Condition.wait/notify still work on top of both lock kinds."""
        recording()
        for lock in (threading.Lock(), threading.RLock()):
            cond = threading.Condition(lock)
            box = []

            def consumer(cond=cond, box=box):
                with cond:
                    cond.wait_for(lambda box=box: box, timeout=5)

            t = threading.Thread(target=consumer)
            t.start()
            with cond:
                box.append(1)
                cond.notify_all()
            t.join(5)
            assert not t.is_alive()

    def test_locks_made_before_configure_are_still_lock_instances(self, recording):
        """isinstance(x, _thread.LockType) holds for old and new locks alike."""
        old = threading.Lock()
        recording()
        new = threading.Lock()

        assert isinstance(old, _thread.LockType)
        assert isinstance(new, _thread.LockType)

    def test_stdlib_locks_are_marked_internal(self, recording):
        """The lock inside a threading.Event is the stdlib's own: internal."""
        path = recording()
        ev = threading.Event()
        ev.set()
        ev.wait()
        tracelens.shutdown()

        lock_events = [e for e in read_trace(path) if e["event"] in ("acquire", "release")]
        assert lock_events
        assert all(e.get("internal") for e in lock_events)

    def test_releasing_an_unlocked_lock_raises_and_records_nothing(self, recording):
        """The usual RuntimeError passes through; no phantom release is recorded."""
        path = recording()
        lock = threading.Lock()
        with pytest.raises(RuntimeError):
            lock.release()
        tracelens.shutdown()

        assert _sync(path, "release") == []


class TestThreads:
    def test_fork_begin_end_join_order(self, recording):
        """fork < child's first event; child's last event < join, in seq order."""
        path = recording()
        d = tracelens.watch({"x": 0}, "d")

        def child():
            d["x"] = 1

        t = threading.Thread(target=child, name="worker")
        t.start()
        t.join()
        tracelens.shutdown()

        events = [e for e in read_trace(path) if not e.get("internal") and e["event"] != "meta"]
        unit = next(e["obj"] for e in events if e["event"] == "fork")
        child_events = [e for e in events if e["unit"] == unit]
        fork = next(e for e in events if e["event"] == "fork")
        join = next(e for e in events if e["event"] == "join")
        assert [e["event"] for e in child_events] == ["begin", "write", "end"]
        assert fork["seq"] < child_events[0]["seq"]
        assert child_events[-1]["seq"] < join["seq"]
        assert child_events[0]["thread"] == "worker"
        assert child_events[0]["func"] == "child"

    def test_units_are_unique_even_when_os_thread_ids_are_reused(self, recording):
        """Fifty short threads get fifty distinct units."""
        path = recording()
        for _ in range(50):
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
        tracelens.shutdown()

        begins = [e["unit"] for e in read_trace(path) if e["event"] == "begin"]
        assert len(set(begins)) == 50

    def test_join_of_a_running_thread_records_a_wait_first(self, recording):
        """A join that blocks records `wait` on the child before `join`."""
        path = recording()
        go = threading.Event()
        t = threading.Thread(target=lambda: go.wait(5))
        t.start()
        timer = threading.Timer(0.05, go.set)
        timer.start()
        t.join()
        timer.join()
        tracelens.shutdown()

        unit = next(e["obj"] for e in read_trace(path) if e["event"] == "fork")
        mine = [e["event"] for e in read_trace(path) if e.get("obj") == unit and e["unit"] == "t0"]
        assert mine == ["fork", "wait", "join"]


def test_events_inside_an_asyncio_task_carry_the_task(recording):
    """Inside a task, the unit is the task ("a<n>") and the task's name is recorded."""
    import asyncio

    path = recording()
    d = tracelens.watch({}, "d")

    async def main():
        async def child():
            d["x"] = 1

        await asyncio.create_task(child(), name="child-task")

    asyncio.run(main())
    tracelens.shutdown()

    (ev,) = [e for e in read_trace(path) if e.get("var") == "d['x']"]
    assert ev["task"] == "child-task"
    assert ev["unit"].startswith("a")
    assert ev["unit"] != "t0"


def test_lock_factories_imported_by_name_before_configure_make_recorded_locks(
    recording, monkeypatch
):
    """A module that did 'from threading import RLock' before configure gets recorded locks."""
    import _thread
    import sys
    import types

    lib = types.ModuleType("early_lib")
    lib.RLock, lib.Lock, lib.alloc = threading.RLock, threading.Lock, _thread.allocate_lock
    monkeypatch.setitem(sys.modules, "early_lib", lib)
    path = recording()
    for make in (lib.RLock, lib.Lock, lib.alloc):
        with make():
            pass
    tracelens.shutdown()

    acquires = [e for e in read_trace(path) if e["event"] == "acquire"]
    assert len(acquires) == 3


def test_shutdown_gives_back_the_factories_a_module_imported_by_name(recording, monkeypatch):
    """After shutdown the early module's names are the standard factories again."""
    import sys
    import types

    lib = types.ModuleType("early_lib")
    lib.RLock = original = threading.RLock
    monkeypatch.setitem(sys.modules, "early_lib", lib)
    recording()
    tracelens.shutdown()
    assert lib.RLock is original
