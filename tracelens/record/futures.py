"""``concurrent.futures`` recorded as send/recv edges on the future.

Every future is a sync object named after the line that submitted or created it
(``Future@file.py:12#3``, kind ``future``):

* ``submit`` records a ``send`` with ``msg`` (a task number) before the work item is
  queued; in a thread pool the task records the matching ``recv`` in the worker
  before the function runs (its call site is the function);
* the task's end records a ``send`` before the result or exception is set (in a
  thread pool: in the worker, right after the function returned or raised);
  ``set_result``/``set_exception`` called directly record it too;
* ``result()`` and ``exception()`` (when they return, or raise the task's own
  exception), every future ``as_completed`` yields, the done futures ``wait``
  returns, ``Executor.map``'s results (through ``result()``) and the start of a
  done-callback the program added record a ``recv``. ``wait`` is recorded before a
  ``result()``/``exception()`` that blocks.

Process pools: the worker is another process, so only the parent's side is recorded
(submit, the result's arrival in the pool's manager thread, ``result()``).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import _base
from concurrent.futures import thread as cf_thread
from typing import Any, Final

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import STATE, next_seq, record
from tracelens.record._patch import Patches
from tracelens.record.locks import lock_identity

_SEND: Final = s.Op.SEND
_RECV: Final = s.Op.RECV
_WAIT: Final = s.Op.WAIT
_FUTURE: Final = {s.KIND: s.Kind.FUTURE}
_tasks = itertools.count(1)
_tls = threading.local()
_Future = _base.Future
_PATCHES = Patches()
_patch = _PATCHES.set
_o = _PATCHES.original
_DONE: Final = frozenset({_base.FINISHED, _base.CANCELLED, _base.CANCELLED_AND_NOTIFIED})


def _new_name() -> str:
    try:
        return lock_identity("Future")[0]
    except Exception:  # recording never raises into user code
        return f"Future#{next(_tasks)}"


def name_of(fut: Any) -> str:
    """The future's name (futures created before ``configure`` are named on first use)."""
    try:
        return fut._tl_name  # type: ignore[no-any-return]
    except AttributeError:
        name = fut._tl_name = _new_name()
        return name


def known_name(fut: Any) -> str | None:
    """The future's name if it has one (``None`` for a future nobody named yet)."""
    return getattr(fut, "_tl_name", None)


def _site(fn: Any) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(fn, "func", None), "__code__", None)  # functools.partial
    if code is None:
        return _FUTURE
    return {**_FUTURE, s.FILE: code.co_filename, s.LINE: code.co_firstlineno, s.FUNC: code.co_name}


class _Task:
    """The function a thread pool runs, with the task's start and end recorded."""

    __slots__ = ("fn", "msg", "name")

    def __init__(self, fn: Callable[..., Any], name: str, msg: int) -> None:
        self.fn = fn
        self.name = name
        self.msg = msg

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        site = _site(self.fn)
        if STATE.on:
            record(_RECV, next_seq(), self.name, extra={**site, s.MSG: self.msg})
        try:
            return self.fn(*args, **kwargs)
        finally:
            if STATE.on:
                # The task's end, before _WorkItem.run sets the result.
                record(_SEND, next_seq(), self.name, extra=site)
                _tls.ended = self.name


# -- Future --------------------------------------------------------------------------------
def _future_init(self: Any) -> None:
    _o(_Future, "__init__")(self)
    name = getattr(_tls, "name", None)
    if name is not None:  # created by a recorded ThreadPoolExecutor.submit
        _tls.name = None
        self._tl_name = name
        return
    if not STATE.on:
        return
    caller = _core.getframe(1).f_code
    self._tl_name = name = _new_name()
    if caller.co_name == "submit" and "ProcessPoolExecutor" in getattr(caller, "co_qualname", ""):
        # Before the work item is queued for the worker processes.
        record(_SEND, next_seq(), name, extra={**_FUTURE, s.MSG: next(_tasks)})


def _ended_here(name: str) -> bool:
    if getattr(_tls, "ended", None) == name:
        _tls.ended = None
        return True
    return False


def _set_result(self: Any, result: Any) -> None:
    if STATE.on:
        name = name_of(self)
        if not _ended_here(name):
            record(_SEND, next_seq(), name, extra=_FUTURE)
    _o(_Future, "set_result")(self, result)


def _set_exception(self: Any, exception: Any) -> None:
    if STATE.on:
        name = name_of(self)
        if not _ended_here(name):
            record(_SEND, next_seq(), name, extra=_FUTURE)
    _o(_Future, "set_exception")(self, exception)


#: asyncio copies an executor's result into its own future in a loop callback: not a
#: hand-off to the program (the awaiting task records its own, see ``aio``).
#: asyncio's futures module, by file name (importing asyncio only to learn it costs ~50 ms).
_QUIET_CALLERS: Final = frozenset(
    {
        os.path.normpath(
            os.path.join(os.path.dirname(_base.__file__), "..", "..", "asyncio", "futures.py")
        )
    }
)


def _recv(fut: Any) -> None:
    seq = next_seq()
    if _core.getframe(2).f_code.co_filename in _QUIET_CALLERS:
        return
    record(_RECV, seq, name_of(fut), extra=_FUTURE, depth=3)


def _result(self: Any, timeout: float | None = None) -> Any:
    if not STATE.on:
        return _o(_Future, "result")(self, timeout)
    if self._state not in _DONE:  # a hint, read without the future's lock
        record(_WAIT, next_seq(), name_of(self), extra=_FUTURE)
    try:
        rv = _o(_Future, "result")(self, timeout)
    except (cf.TimeoutError, cf.CancelledError):
        raise
    except BaseException:
        if STATE.on:
            _recv(self)  # the task's exception was handed over
        raise
    if STATE.on:
        _recv(self)
    return rv


def _exception(self: Any, timeout: float | None = None) -> Any:
    if not STATE.on:
        return _o(_Future, "exception")(self, timeout)
    if self._state not in _DONE:  # a hint, read without the future's lock
        record(_WAIT, next_seq(), name_of(self), extra=_FUTURE)
    exc = _o(_Future, "exception")(self, timeout)
    if STATE.on:
        _recv(self)
    return exc


def _add_done_callback(self: Any, fn: Callable[[Any], Any]) -> None:
    # Only the program's own callbacks: the standard library's (asyncio chaining a
    # future, as_completed's waiters) hand over nothing to the program.
    if not STATE.on or _core.getframe(1).f_code.co_filename in _core.SKIP_FILES:
        _o(_Future, "add_done_callback")(self, fn)
        return
    name = name_of(self)

    def callback(fut: Any) -> Any:
        if STATE.on:
            seq = next_seq()
            record(_RECV, seq, name, extra=_site(fn))
        return fn(fut)

    _o(_Future, "add_done_callback")(self, callback)


# -- executors and module functions ---------------------------------------------------
def _tpe_submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    if not STATE.on:
        return _o(cf_thread.ThreadPoolExecutor, "submit")(self, fn, *args, **kwargs)
    name = _new_name()
    msg = next(_tasks)
    _tls.name = name  # adopted by the Future that submit creates
    try:
        # Before the work item is queued.
        record(_SEND, next_seq(), name, extra={**_FUTURE, s.MSG: msg})
        submit = _o(cf_thread.ThreadPoolExecutor, "submit")
        return submit(self, _Task(fn, name, msg), *args, **kwargs)
    finally:
        _tls.name = None


def _as_completed(fs: Iterable[Any], timeout: float | None = None) -> Iterator[Any]:
    for f in _o(_base, "as_completed")(fs, timeout):
        if STATE.on:
            seq = next_seq()
            record(_RECV, seq, name_of(f), extra=_FUTURE)
        yield f


def _wait(
    fs: Iterable[Any], timeout: float | None = None, return_when: str = cf.ALL_COMPLETED
) -> Any:
    done_and_not_done = _o(_base, "wait")(fs, timeout, return_when)
    if STATE.on:
        for f in done_and_not_done.done:
            seq = next_seq()
            record(_RECV, seq, name_of(f), extra=_FUTURE)
    return done_and_not_done


_as_completed.__doc__ = _base.as_completed.__doc__
_wait.__doc__ = _base.wait.__doc__


def install() -> None:
    """Patch ``concurrent.futures`` (idempotent)."""
    if _PATCHES:
        return
    for m in (_base, cf_thread, cf):
        f = getattr(m, "__file__", None)
        if f:
            _core.SKIP_FILES.add(f)
    _core.SKIP_FILES.add(os.path.join(os.path.dirname(_base.__file__), "process.py"))
    _patch(_Future, "__init__", _future_init)
    _patch(_Future, "set_result", _set_result)
    _patch(_Future, "set_exception", _set_exception)
    _patch(_Future, "result", _result)
    _patch(_Future, "exception", _exception)
    _patch(_Future, "add_done_callback", _add_done_callback)
    _patch(cf_thread.ThreadPoolExecutor, "submit", _tpe_submit)
    _patch(_base, "as_completed", _as_completed)
    _patch(_base, "wait", _wait)
    # The package re-exports them: patch the names programs use, keep the originals.
    _patch(cf, "as_completed", _as_completed)
    _patch(cf, "wait", _wait)


def uninstall() -> None:
    """Restore everything ``install`` patched."""
    _PATCHES.restore()
