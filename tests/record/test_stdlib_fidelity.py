"""Recorded locks look and behave like the standard library's: a program cannot tell."""

from __future__ import annotations

import _thread
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

_BAD_ACQUIRES = [
    ((False, 1), {}),  # a timeout for a non-blocking call
    ((), {"timeout": -100}),
    ((), {"timeout": 1e100}),
    ((), {"timeout": threading.TIMEOUT_MAX + 1}),
    ((True, 1, 2), {}),
    ((), {"blocking": True, "wait": 1}),
    ((), {"timeout": "soon"}),
]


def _error(call):
    try:
        call()
    except Exception as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("make", [threading.Lock, threading.RLock], ids=["Lock", "RLock"])
@pytest.mark.parametrize(("args", "kwargs"), _BAD_ACQUIRES)
def test_bad_acquire_arguments_raise_what_a_plain_lock_raises(recording, make, args, kwargs):
    """A recorded acquire given bad arguments raises the plain lock's exception and message."""
    plain = _error(lambda: make().acquire(*args, **kwargs))
    recording()
    recorded = _error(lambda: make().acquire(*args, **kwargs))

    assert plain is not None
    assert recorded == plain


@pytest.mark.parametrize("make", [threading.Lock, threading.RLock], ids=["Lock", "RLock"])
def test_good_acquire_arguments_work_as_on_a_plain_lock(recording, make):
    """acquire(False), acquire(True, t) and acquire(blocking=...) give what a plain lock gives."""

    def results():
        free, held = make(), make()
        held.acquire()
        return [
            free.acquire(False),
            held.acquire(True, 0.01),
            make().acquire(blocking=1),
            make().acquire(timeout=0.5),
        ]

    plain = results()
    recording()
    assert results() == plain


def test_allocate_lock_stored_on_a_class_does_not_bind(recording):
    """``locktype = _thread.allocate_lock`` on a class, called as self.locktype(), gives a lock."""
    recording()

    class Holder:
        locktype = _thread.allocate_lock

    lock = Holder().locktype()
    with lock:
        assert lock.locked()


@pytest.mark.parametrize(
    "name", ["allocate_lock", "RLock", "LockType"], ids=lambda n: f"_thread.{n}"
)
def test_thread_factories_keep_their_names_and_module(recording, name):
    """_thread's replaced names keep the original's __name__, __qualname__ and __module__."""
    before = getattr(_thread, name)
    names = (before.__name__, before.__qualname__, before.__module__)
    recording()
    after = getattr(_thread, name)

    assert after is not before
    assert (after.__name__, after.__qualname__, after.__module__) == names


@pytest.mark.parametrize("name", ["Lock", "RLock"])
def test_threading_factories_count_as_the_modules_own(recording, name):
    """threading.Lock and RLock keep a __module__ that test.support.check__all__ accepts."""
    recording()
    assert getattr(threading, name).__module__ in ("threading", "_thread")


@pytest.mark.parametrize("make", [threading.Lock, threading.RLock], ids=["Lock", "RLock"])
def test_repr_has_the_standard_librarys_shape(recording, make):
    """repr of a recorded lock reads as a plain one's, held or not, with its own address."""
    plain = make()
    shape = re.sub(r"0x[0-9a-f]+", "ADDR", repr(plain))
    plain.acquire()
    held_shape = re.sub(r"0x[0-9a-f]+|owner=\d+", "X", repr(plain))
    recording()
    lock = make()
    got = repr(lock)
    lock.acquire()
    held = repr(lock)

    assert re.sub(r"0x[0-9a-f]+", "ADDR", got) == shape
    assert f"at {id(lock):#x}>" in got
    assert re.sub(r"0x[0-9a-f]+|owner=\d+", "X", held) == held_shape


def test_type_of_a_lock_is_instantiable_exactly_when_the_plain_type_is(recording):
    """type(threading.Lock())() raises 'cannot create ... instances' iff it does plainly."""
    plain = _error(lambda: type(threading.Lock())())
    recording()
    tp = type(threading.Lock())
    recorded = _error(lambda: tp())
    recorded_new = _error(lambda: tp.__new__(tp))

    assert (plain is None) == (recorded is None) == (recorded_new is None)
    if recorded is not None:
        name = f"{tp.__module__}.{tp.__name__}"
        assert recorded == (TypeError, f"cannot create '{name}' instances")


def test_locks_made_before_and_after_are_instances_of_lock_type(recording):
    """isinstance and issubclass against _thread.LockType hold for old and new locks."""
    old = threading.Lock()
    recording()
    new = threading.Lock()

    assert isinstance(old, _thread.LockType) and isinstance(new, _thread.LockType)
    assert issubclass(type(new), _thread.LockType)


def test_rlocks_are_instances_of_the_rlock_type(recording):
    """isinstance(x, _thread.RLock) holds for recorded RLocks and those made before."""
    old = threading.RLock()
    recording()
    new = threading.RLock()

    assert isinstance(old, _thread.RLock) and isinstance(new, _thread.RLock)


@pytest.mark.parametrize("make", [threading.Lock, threading.RLock], ids=["Lock", "RLock"])
def test_a_recorded_lock_cannot_be_pickled_as_a_plain_one_cannot(recording, make):
    """Pickling a recorded lock raises TypeError, as pickling a plain lock does."""
    plain = _error(lambda: pickle.dumps(make()))
    recording()
    recorded = _error(lambda: pickle.dumps(make()))

    assert plain is not None and plain[0] is TypeError
    assert recorded is not None and recorded[0] is TypeError


def test_the_lock_factory_pickles_by_reference(recording):
    """pickle.dumps(_thread.allocate_lock) names _thread.allocate_lock, as it does plainly."""
    recording()
    assert pickle.loads(pickle.dumps(_thread.allocate_lock)) is _thread.allocate_lock


def test_the_lock_type_cannot_be_subclassed_as_the_plain_one_cannot(recording):
    """class MyLock(_thread.LockType) raises TypeError recorded, as it does plainly."""
    plain = _error(lambda: type("MyLock", (_thread.LockType,), {}))
    recording()
    recorded = _error(lambda: type("MyLock", (_thread.LockType,), {}))

    assert plain is not None
    assert recorded == plain


def test_rlock_arguments_warn_or_fail_as_plainly(recording):
    """threading.RLock(1) warns or raises exactly as the plain factory does on this Python."""
    import warnings

    def outcome():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            err = _error(lambda: threading.RLock(1))
        return err, [type(w.message) for w in seen]

    plain = outcome()
    recording()
    assert outcome() == plain


#: The interpreter's own tests of what the recorder patches (test_threading and
#: test_queue, 20 s more, are in benchmarks/cpython_suite.py).
_CPYTHON_TESTS = [
    "test_thread",
    "test_threading_local",
    "test_asyncio.test_locks",
    "test_asyncio.test_queues",
]


def _has_test_package() -> bool:
    try:
        import test.support  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_test_package(), reason="this Python has no test package")
def test_cpythons_own_threading_tests_pass_under_tracelens_run(tmp_path: Path):
    """python -m test on the thread, lock and queue tests gives the same result recorded."""
    plain = subprocess.Popen(
        [sys.executable, "-m", "test", *_CPYTHON_TESTS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    trace = str(tmp_path / "t.jsonl")
    recorded = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "-o", trace, "-m", "test", *_CPYTHON_TESTS],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    plain_out, _ = plain.communicate(timeout=600)

    def result(out: str) -> list[str]:
        return [ln for ln in out.splitlines() if ln.startswith(("Result:", "Total tests:"))]

    assert result(plain_out)[-1] == "Result: SUCCESS"
    assert result(recorded.stdout) == result(plain_out), recorded.stdout[-3000:]
    assert recorded.returncode == plain.returncode == 0
