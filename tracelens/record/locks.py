"""Recorded replacements for ``threading.Lock``/``RLock`` and the ``_thread`` locks.

``configure`` installs these factories in ``threading`` and ``_thread`` so that
every lock created afterwards records its acquires and releases. Each lock gets a
readable identity, ``Lock@file.py:12#3``: kind, creation site and a counter. A lock
created by the standard library (a ``Condition``'s or ``queue.Queue``'s own lock,
for instance) is marked ``internal``.

Order guarantees (see ``tracelens.record._core``): ``release`` is recorded before
the lock is released and ``acquire`` after it is held, so a release always has a
smaller sequence number than the acquire that follows it. An acquire that has to
block first records ``acquire_try``, so a deadlocked run shows who waits for what.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import itertools
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import (
    STATE,
    next_seq,
    original_allocate_lock,
    original_rlock,
    record,
)

_A, _R, _T, _F = s.Op.ACQUIRE, s.Op.RELEASE, s.Op.ACQUIRE_TRY, s.Op.ACQUIRE_FAIL
_monotonic_ns = time.monotonic_ns
_counter = itertools.count(1)
_STDLIB: Final = os.path.normcase(sysconfig.get_paths()["stdlib"]) + os.sep
_PURELIB: Final = os.path.normcase(sysconfig.get_paths()["purelib"]) + os.sep
_TRACELENS: Final = os.path.normcase(os.path.dirname(os.path.dirname(__file__))) + os.sep


def lock_identity(kind: str) -> tuple[str, bool]:
    """A readable identity for a new sync object and whether it is internal.

    The creation site is the first frame outside tracelens and the standard
    library's synchronisation modules (``_core.SKIP_FILES``).

    Args:
        kind: Shown first, e.g. ``"Lock"``.

    Returns:
        ``("Lock@file.py:12#3", internal)``, internal when the object was created by
        the standard library or by tracelens itself rather than by the program.
    """
    f = _core.getframe(1)
    while f.f_back is not None and os.path.normcase(f.f_code.co_filename).startswith(_TRACELENS):
        f = f.f_back
    # The creator is the first frame outside tracelens; the name shows the user's line.
    creator = os.path.normcase(f.f_code.co_filename)
    # "<frozen importlib._bootstrap>": the import system's module locks.
    internal = (creator.startswith(_STDLIB) and not creator.startswith(_PURELIB)) or (
        creator.startswith("<frozen ")
    )
    while f.f_code.co_filename in _core.SKIP_FILES and f.f_back is not None:
        f = f.f_back
    name = f"{kind}@{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}#{next(_counter)}"
    return name, internal


class _PyLockCore:
    """The recorded lock's acquire and release, in Python: the reference of the C
    accelerator's ``LockCore`` (``_speedups.c``), whose methods are C method descriptors.

    What the C methods close, these leave open: the entry of a Python method is an
    eval-breaker check, where a signal handler's exception (KeyboardInterrupt) is
    raised before the method's ``try``: at ``__exit__``'s entry it leaves the lock held,
    and in ``_acquire`` after ``lk.acquire`` returns, before its ``try`` (a call's
    return is a check too), it leaves it acquired. ``benchmarks/lock_signals.py``
    counts those leaks on both paths.
    """

    __slots__ = ("_extra", "_lk", "name")
    _lk: _thread.LockType
    name: str
    _extra: dict[str, Any]

    def _acquire(self, blocking: bool, timeout: float, depth: int) -> bool:
        # NOTE: once the real lock is held, anything raised before we return (a
        # KeyboardInterrupt or a signal handler's exception at a switch point inside
        # the recording) releases it again: a caller whose acquire raised does not
        # hold the lock, and ``with`` never runs __exit__ for a failed __enter__.
        lk = self._lk
        if lk.acquire(False):
            try:
                if STATE.on:
                    seq = next_seq()
                    record(_A, seq, self.name, extra={**self._extra, s.WAIT_NS: 0}, depth=depth)
            except BaseException:
                lk.release()
                raise
            return True
        if not blocking:
            return False
        on = STATE.on
        if on:
            record(_T, next_seq(), self.name, extra=self._extra, depth=depth)
        t0 = _monotonic_ns()
        ok = lk.acquire(True, timeout)
        try:
            if on and STATE.on:
                seq = next_seq()
                if ok:
                    extra = {**self._extra, s.WAIT_NS: _monotonic_ns() - t0}
                    record(_A, seq, self.name, extra=extra, depth=depth)
                else:
                    record(_F, seq, self.name, extra=self._extra, depth=depth)
        except BaseException:
            if ok:
                lk.release()
            raise
        return ok

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        if args or kwargs:
            return self._acquire(*acquire_arguments(args, kwargs), 3)
        return self._acquire(True, -1, 3)

    def __enter__(self) -> bool:
        return self._acquire(True, -1, 3)

    def _release(self, depth: int) -> None:
        lk = self._lk  # NOTE: no call before the try: a call is a point where a signal
        try:  # handler may raise, and the lock must be released all the same
            if STATE.on and lk.locked():  # unlocked: release() raises, nothing recorded
                # NOTE: recorded before the real release, so seq order is lock order.
                record(_R, next_seq(), self.name, extra=self._extra, depth=depth)
        finally:
            lk.release()

    def release(self) -> None:
        self._release(3)

    def __exit__(self, *exc: object) -> None:
        # The body of _release again, not a call to it: one switch point fewer where an
        # interrupt would leave the lock held (only this function's entry remains).
        lk = self._lk
        try:
            if STATE.on and lk.locked():
                record(_R, next_seq(), self.name, extra=self._extra, depth=2)
        finally:
            lk.release()


_speedups = _core.speedups

#: The base of ``TracedLock``: the C methods when the accelerator is built, else the
#: Python reference.
if TYPE_CHECKING or _speedups is None:  # noqa: SIM108 (a class mypy can subclass)
    _LockCore = _PyLockCore
else:
    _LockCore = _speedups.LockCore


class TracedLock(_LockCore):
    """A ``threading.Lock`` that records its acquires and releases."""

    __slots__ = ("__weakref__",)
    _KIND = s.Kind.LOCK

    def __new__(cls, *args: Any, **kwargs: Any) -> TracedLock:
        # Like the type of the standard library's locks: not instantiable where that
        # is not (before 3.13); the factories use _LockCore.__new__ and _init.
        if not _LOCK_TYPE_INSTANTIABLE:
            raise TypeError(f"cannot create '{cls.__module__}.{cls.__name__}' instances")
        return _LockCore.__new__(cls)

    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self._lk = original_allocate_lock()
        self.name, internal = lock_identity("Lock")
        self._extra = {s.KIND: self._KIND, s.INTERNAL: True} if internal else {s.KIND: self._KIND}

    def locked(self) -> bool:
        return self._lk.locked()

    # Condition's protocol: without these it would probe with acquire(False).
    def _is_owned(self) -> bool:
        return self._lk.locked()

    def _release_save(self) -> None:
        self._release(3)

    def _acquire_restore(self, _state: object) -> None:
        self._acquire(True, -1, 3)

    def _at_fork_reinit(self) -> None:
        self._lk._at_fork_reinit()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return same_repr(self._lk, self)


class TracedRLock:
    """A ``threading.RLock`` that records its outermost acquire and last release.

    Re-entrant acquires change nothing for other threads, so they are not events.
    """

    __slots__ = ("__weakref__", "_count", "_extra", "_lk", "name")
    _KIND = s.Kind.RLOCK
    _lk: Any  # the C RLock, with the private methods Condition uses

    def __init__(self) -> None:
        self._lk = original_rlock()
        self._count = 0  # only the owner changes it
        self.name, internal = lock_identity("RLock")
        self._extra = {s.KIND: self._KIND, s.INTERNAL: True} if internal else {s.KIND: self._KIND}

    def _acquire(self, blocking: bool, timeout: float, depth: int) -> bool:
        lk = self._lk
        if lk.acquire(False):
            self._count += 1
            try:
                if self._count == 1 and STATE.on:
                    seq = next_seq()
                    record(_A, seq, self.name, extra={**self._extra, s.WAIT_NS: 0}, depth=depth)
            except BaseException:  # as TracedLock._acquire: a raising acquire holds nothing
                self._count -= 1
                lk.release()
                raise
            return True
        if not blocking:
            return False
        on = STATE.on
        if on:
            record(_T, next_seq(), self.name, extra=self._extra, depth=depth)
        t0 = _monotonic_ns()
        ok: bool = lk.acquire(True, timeout)
        if ok:
            self._count += 1
        try:
            if on and STATE.on:
                seq = next_seq()
                if ok:
                    extra = {**self._extra, s.WAIT_NS: _monotonic_ns() - t0}
                    record(_A, seq, self.name, extra=extra, depth=depth)
                else:
                    record(_F, seq, self.name, extra=self._extra, depth=depth)
        except BaseException:
            if ok:
                self._count -= 1
                lk.release()
            raise
        return ok

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        if args or kwargs:
            return self._acquire(*acquire_arguments(args, kwargs), 3)
        return self._acquire(True, -1, 3)

    def __enter__(self) -> bool:
        return self._acquire(True, -1, 3)

    def _release(self, depth: int) -> None:
        lk = self._lk  # no call before the try (TracedLock._release)
        try:
            if self._count == 1 and STATE.on and lk._is_owned():
                record(_R, next_seq(), self.name, extra=self._extra, depth=depth)
        finally:
            if lk._is_owned():
                self._count -= 1
            lk.release()  # not owned: the usual RuntimeError

    def release(self) -> None:
        self._release(3)

    def __exit__(self, *exc: object) -> None:
        lk = self._lk  # _release's body again (TracedLock.__exit__)
        try:
            if self._count == 1 and STATE.on and lk._is_owned():
                record(_R, next_seq(), self.name, extra=self._extra, depth=2)
        finally:
            if lk._is_owned():
                self._count -= 1
            lk.release()

    def _is_owned(self) -> bool:
        return self._lk._is_owned()  # type: ignore[no-any-return]

    def _recursion_count(self) -> int:
        return self._lk._recursion_count()  # type: ignore[no-any-return]

    def _release_save(self) -> Any:
        # Condition.wait: the lock is released whatever its depth.
        if STATE.on:
            record(_R, next_seq(), self.name, extra=self._extra, depth=2)
        count = self._count
        self._count = 0
        return (count, self._lk._release_save())

    def _acquire_restore(self, state: Any) -> None:
        count, inner = state
        self._lk._acquire_restore(inner)
        self._count = count
        if STATE.on:
            seq = next_seq()
            record(_A, seq, self.name, extra={**self._extra, s.WAIT_NS: 0}, depth=2)

    def _at_fork_reinit(self) -> None:
        self._lk._at_fork_reinit()
        self._count = 0

    def __repr__(self) -> str:
        return same_repr(self._lk, self)


def mark_program_lock(lock: TracedLock | TracedRLock) -> None:
    """From now on record ``lock`` as the program's own, not ``internal``.

    For the lock a user's ``Condition`` makes for itself: the standard library creates
    it, but the program takes it (``with cond:``).
    """
    lock._extra = {s.KIND: lock._KIND}


def _new_lock() -> TracedLock:
    lock: TracedLock = _LockCore.__new__(TracedLock)
    lock._init()
    return lock


def acquire_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, float]:
    """``acquire``'s ``(blocking, timeout)``, checked exactly as the real lock checks them.

    A fresh, unheld lock of the standard library's acquires them first: it raises the
    same ``TypeError``, ``ValueError`` or ``OverflowError`` a plain lock would, and when
    the arguments are good it takes that lock at once, without waiting.
    """
    original_allocate_lock().acquire(*args, **kwargs)
    return _bind(*args, **kwargs)


def _bind(blocking: Any = True, timeout: Any = -1) -> tuple[bool, float]:
    return bool(blocking), timeout


if _speedups is not None:  # the C methods look STATE, next_seq, record up here, as these do
    _speedups.lock_setup(globals(), _A, _R, _T, _F, s.WAIT_NS)


def same_repr(inner: object, outer: object) -> str:
    """``repr(inner)``, the standard library's wording, with ``outer``'s address."""
    text = repr(inner)
    at = text.rfind(" at 0x")
    return text if at < 0 else f"{text[:at]} at {id(outer):#x}>"


class Builtin:
    """Stands in for a builtin function of the standard library (``allocate_lock``).

    Unlike a Python function it does not bind as a method when stored on a class
    (``locktype = _thread.allocate_lock``, then ``self.locktype()``), and it reads as
    the original: name, module, doc, ``repr``, pickled by reference.
    """

    def __init__(self, original: Callable[..., Any], make: Callable[[], Any]) -> None:
        self.__wrapped__ = original
        self._make = make
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                setattr(self, attr, getattr(original, attr))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            self.__wrapped__(*args, **kwargs)  # the original's own TypeError, if any
        return self._make()

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def __reduce__(self) -> str:
        return str(vars(self)["__qualname__"])


class BuiltinType(Builtin):
    """A ``Builtin`` standing in for a type (``_thread.RLock``; ``threading.Lock`` on 3.13).

    ``isinstance`` against it holds for the recorded objects and for the originals
    made before recording started.
    """

    def __init__(
        self, original: type, make: Callable[[], Any], recorded: type, *, instantiable: bool
    ) -> None:
        super().__init__(original, make)
        self._types = (recorded, original)
        self._instantiable = instantiable

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._instantiable:
            return self.__wrapped__(*args, **kwargs)  # raises as the original does
        return super().__call__(*args, **kwargs)

    def __instancecheck__(self, obj: object) -> bool:
        return isinstance(obj, self._types)

    def __subclasscheck__(self, cls: type) -> bool:
        return issubclass(cls, self._types)


def rlock_factory(original: Callable[..., Any]) -> Callable[..., TracedRLock]:
    """What is installed as ``threading.RLock``: a Python function there too, read as it."""

    @functools.wraps(original)
    def RLock(*args: Any, **kwargs: Any) -> TracedRLock:
        if args or kwargs:
            original(*args, **kwargs)  # its own warning (3.13) or error, if any
        return TracedRLock()

    return RLock


class _LockTypeMeta(type):
    # isinstance(x, _thread.LockType) stays true for locks made before configure().
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, (TracedLock, _ORIGINAL_LOCK_TYPE))

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, (TracedLock, _ORIGINAL_LOCK_TYPE))


_ORIGINAL_LOCK_TYPE: Final = type(original_allocate_lock())


def _instantiable(tp: type) -> bool:
    try:
        tp()
    except TypeError:
        return False
    return True


#: Whether ``type(threading.Lock())()`` makes a lock (3.13 and later) or raises.
_LOCK_TYPE_INSTANTIABLE: Final = _instantiable(_ORIGINAL_LOCK_TYPE)


class LockType(TracedLock, metaclass=_LockTypeMeta):
    """Installed as ``_thread.LockType`` (and as ``threading.Lock`` where that is the
    type): constructing it gives a recorded lock where the original type allows it."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not _LOCK_TYPE_INSTANTIABLE:
            _ORIGINAL_LOCK_TYPE(*args, **kwargs)  # raises as the original does
        return _new_lock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # _new_lock initialised it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        name = f"{_ORIGINAL_LOCK_TYPE.__module__}.{_ORIGINAL_LOCK_TYPE.__name__}"
        raise TypeError(f"type '{name}' is not an acceptable base type")


# It reads as the type it stands in for (test.support.check__all__, reprs of the module).
LockType.__module__ = _ORIGINAL_LOCK_TYPE.__module__
LockType.__name__ = _ORIGINAL_LOCK_TYPE.__name__
LockType.__qualname__ = _ORIGINAL_LOCK_TYPE.__qualname__


def install(patch: Callable[[Any, str, Any], None]) -> None:
    """Replace the lock factories of ``threading`` and ``_thread`` with ``patch``, and the
    names other modules imported them under (``from threading import RLock``)."""
    factories = {
        id(f): (f, name)
        for f, name in (
            (_thread.allocate_lock, "allocate_lock"),
            (threading.Lock, "Lock"),
            (threading.RLock, "RLock"),
        )
    }
    allocate = Builtin(_thread.allocate_lock, _new_lock)
    patch(_thread, "allocate_lock", allocate)
    patch(_thread, "LockType", LockType)
    if isinstance(threading.Lock, type):
        patch(threading, "Lock", LockType)  # 3.13: the lock type itself
    else:
        patch(threading, "Lock", allocate)
    patch(threading, "RLock", rlock_factory(threading.RLock))
    rlock_type = _thread.RLock
    patch(
        _thread,
        "RLock",
        BuiltinType(rlock_type, TracedRLock, TracedRLock, instantiable=_instantiable(rlock_type)),
    )
    replaced = {
        fid: getattr(threading if name != "allocate_lock" else _thread, name)
        for fid, (_f, name) in factories.items()
    }
    _rebind_imported(factories, replaced, patch)


def _rebind_imported(
    factories: dict[int, tuple[Any, str]],
    replaced: dict[int, Any],
    patch: Callable[[Any, str, Any], None],
) -> None:
    """Point the names that imported modules hold for the lock factories at the recorded
    ones, so that their locks made from now on are seen (a library imported before
    ``configure`` that did ``from threading import RLock``); each gets what ``threading``
    or ``_thread`` now holds under that factory's name, and ``shutdown`` restores them."""
    wanted = factories.keys()
    for modname, module in list(sys.modules.items()):
        if modname in ("threading", "_thread") or modname.startswith("tracelens"):
            continue
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is not dict or wanted.isdisjoint(map(id, namespace.values())):
            continue  # the common case, decided in C
        for attr, value in list(namespace.items()):
            hit = factories.get(id(value))
            if hit is not None and hit[0] is value:
                patch(module, attr, replaced[id(value)])
