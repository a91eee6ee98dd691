"""The recorded lock's C methods (``_speedups.LockCore``) against their Python reference
(``locks._PyLockCore``), and what each leaves open to an interrupt."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import tracelens
from tests.helpers import read_trace
from tests.record.conftest import BUILT
from tracelens.record import _core, locks

needs_c = pytest.mark.skipif(BUILT is None, reason="the C accelerator is not built")


def _lock_on(core: type) -> Any:
    """A recorded lock whose acquire and release are ``core``'s (the rest: TracedLock's)."""
    cls = type(
        "L",
        (core,),
        {
            "__slots__": (),
            "_KIND": locks.TracedLock._KIND,
            "_init": locks.TracedLock._init,
            "locked": locks.TracedLock.locked,
        },
    )
    lock = core.__new__(cls)
    lock._init()
    return lock


@contextmanager
def _raising_at_entry(where: Callable[[Any], bool]) -> Iterator[list[str]]:
    """A KeyboardInterrupt at the entry of the next Python function of this thread that
    ``where(frame)`` picks, as a signal handler raises at a function's eval-breaker
    check; the names of the functions it was raised in."""
    hits: list[str] = []

    def tracer(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and not hits and where(frame):
            hits.append(frame.f_code.co_name)
            raise KeyboardInterrupt
        return None

    sys.settrace(tracer)
    try:
        yield hits
    finally:
        sys.settrace(None)


def _in_module(module: Any) -> Callable[[Any], bool]:
    return lambda frame: frame.f_code.co_filename == module.__file__


def _events(recording: Any, core: type) -> list[tuple[Any, ...]]:
    path = recording()
    lock = _lock_on(core)
    with lock:
        pass
    lock.acquire()
    lock.release()
    assert lock.acquire(True, 1)
    lock.release()
    assert lock.acquire(blocking=False)
    assert not lock.acquire(False)
    lock.release()
    tracelens.shutdown()
    return [
        (e["event"], e["line"], e["func"], e.get("kind"))
        for e in read_trace(path)
        if e.get("obj") == lock.name
    ]


@needs_c
def test_the_c_lock_methods_record_what_the_python_reference_records(recording):
    """acquire, release, ``with`` and their arguments: the same events at the same lines."""
    assert BUILT is not None
    got = _events(recording, BUILT.LockCore)
    want = _events(recording, locks._PyLockCore)
    assert [e[0] for e in got] == ["acquire", "release"] * 4
    assert got == want  # the same lines of _events: the call sites, on both
    assert all(e[2] == "_events" for e in got)


@needs_c
def test_an_interrupt_at_the_entry_of_the_recording_leaves_a_c_lock_released(recording):
    """C ``__exit__``: a KeyboardInterrupt at the first Python function it calls (the
    recorder's) still releases the lock, and the interrupt reaches the program."""
    assert BUILT is not None
    recording()
    lock = _lock_on(BUILT.LockCore)
    lock.acquire()
    with pytest.raises(KeyboardInterrupt), _raising_at_entry(lambda f: True) as hits:
        lock.__exit__(None, None, None)
    assert lock.acquire(False)  # it was released: free now
    lock.release()
    assert hits, hits  # raised inside, in Python code the release called


@needs_c
def test_the_c_lock_methods_are_c_method_descriptors():
    """No Python frame of its own for acquire, release, __enter__ and __exit__ (so no
    eval-breaker check between the interpreter's call and the release)."""
    assert BUILT is not None
    for name in ("acquire", "release", "__enter__", "__exit__"):
        assert type(getattr(locks.TracedLock, name)).__name__ == "method_descriptor"


def test_an_interrupt_at_the_entry_of_python_exit_leaves_the_lock_held(recording):
    """The pure-Python path's window, stated: a KeyboardInterrupt at ``__exit__``'s entry
    (before its ``try``) leaves the lock held. (``benchmarks/lock_signals.py`` counts it.)"""
    recording()
    lock = _lock_on(locks._PyLockCore)
    lock.acquire()
    with pytest.raises(KeyboardInterrupt), _raising_at_entry(_in_module(locks)) as hits:
        lock.__exit__(None, None, None)
    assert hits == ["__exit__"]
    assert lock.locked()  # leaked
    lock.release()


def test_an_interrupt_inside_python_exit_still_releases(recording):
    """Past its entry, the Python ``__exit__`` releases whatever its recording raises."""
    recording()
    lock = _lock_on(locks._PyLockCore)
    lock.acquire()
    not_exit = _in_module(_core)
    with pytest.raises(KeyboardInterrupt), _raising_at_entry(not_exit) as hits:
        lock.__exit__(None, None, None)
    assert hits and hits != ["__exit__"]
    assert not lock.locked()


def test_a_recorded_lock_is_a_threading_lock_to_a_condition(recording):
    """A Condition over the recorded lock waits and is notified as over a plain one."""
    recording()
    cond = threading.Condition(threading.Lock())
    got: list[int] = []

    def waiter() -> None:
        with cond:
            cond.wait_for(lambda: bool(got), timeout=10)

    t = threading.Thread(target=waiter)
    t.start()
    with cond:
        got.append(1)
        cond.notify_all()
    t.join(10)
    assert not t.is_alive()
