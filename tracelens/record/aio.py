"""asyncio: tasks as units, and the hand-offs between them.

In asyncio the unit is the task (``a<n>``, ``tracelens.record._core.task_unit``): every
event recorded inside a task carries it. ``configure`` adds:

* task creation (``loop.create_task``, so also ``asyncio.create_task``,
  ``ensure_future``, ``gather`` and ``TaskGroup``): ``fork`` on the child ``a<n>`` in
  the creator before the task can run; the child records ``begin`` first and ``end``
  last;
* awaiting a task records ``join`` on it in the awaiting task (``wait`` first when it
  is not done); awaiting ``gather(...)`` joins each task it gathered; leaving
  ``async with TaskGroup()`` joins each task created in it;
* ``run_in_executor`` and ``to_thread``: the executor's future edges
  (``tracelens.record.futures``), and a ``recv`` on that future in the awaiting task
  when the await returns;
* ``asyncio.Lock``: ``acquire_try``/``acquire``/``release`` like a threading lock;
  ``Event``, ``Semaphore``/``BoundedSemaphore``, ``Condition``, ``Queue`` (and its
  subclasses): ``send``/``recv``/``wait`` as their threading counterparts
  (``tracelens.record.sync``).

Tasks created before ``configure`` keep running unrecorded as units of their own
(their events still carry them); ``asyncio.Task(coro)`` called directly is not a
fork. Recording never raises into user code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import events as aio_events
from asyncio import futures as aio_futures
from asyncio import locks as aio_locks
from asyncio import queues as aio_queues
from asyncio import taskgroups as aio_taskgroups
from asyncio import tasks as aio_tasks
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Final

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import STATE, next_seq, record
from tracelens.record._patch import Patches
from tracelens.record.futures import known_name
from tracelens.record.locks import lock_identity
from tracelens.record.sync import hook_queue, identify, info_of, known_info

_TASK: Final = {s.KIND: s.Kind.TASK}
_SEND, _RECV, _WAIT = s.Op.SEND, s.Op.RECV, s.Op.WAIT
_monotonic_ns = time.monotonic_ns
if TYPE_CHECKING:
    _TaskBase = aio_tasks.Task[Any]
    _FutureBase = aio_futures.Future[Any]
else:
    # The plain classes at run time: a subscripted base would give the Task that
    # replaces asyncio's an ``__orig_bases__`` the original does not have.
    _TaskBase = aio_tasks.Task
    _FutureBase = aio_futures.Future
_PATCHES = Patches()
_patch = _PATCHES.set
_o = _PATCHES.original


# -- tasks ---------------------------------------------------------------------------------
async def _run(coro: Coroutine[Any, Any, Any], unit: str) -> Any:
    """The task's coroutine, between its begin and end."""
    task = aio_tasks.current_task()
    if task is not None:
        # The name now, not at creation: TaskGroup names its tasks after creating them.
        _core.TASK_UNITS[task] = (unit, task.get_name())
    code = getattr(coro, "cr_code", None)
    site = (
        _TASK
        if code is None
        else {**_TASK, s.FILE: code.co_filename, s.LINE: code.co_firstlineno, s.FUNC: code.co_name}
    )
    if STATE.on:
        record(s.Op.BEGIN, next_seq(), unit, extra=site, depth=1)
    try:
        return await coro
    finally:
        if STATE.on:
            record(s.Op.END, next_seq(), unit, extra=site, depth=1)


def _create_task(self: Any, coro: Any, *, name: Any = None, context: Any = None) -> Any:
    create = _o(asyncio.BaseEventLoop, "create_task")
    if not STATE.on or not asyncio.iscoroutine(coro):
        return create(self, coro, name=name, context=context)
    unit = f"a{_core.new_unit_id()}"
    wrapped = _run(coro, unit)
    for attr in ("__name__", "__qualname__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(wrapped, attr, getattr(coro, attr))
    # Before the task exists, so before it can run (even an eagerly started one).
    record(s.Op.FORK, next_seq(), unit, extra=_TASK)
    try:
        task = create(self, wrapped, name=name, context=context)
    except BaseException:
        wrapped.close()
        raise
    _core.TASK_UNITS.setdefault(task, (unit, task.get_name()))
    return task


def _join(task: Any) -> None:
    if STATE.on and task.done() and not getattr(task, "_tl_joined", False):
        unit = _core.TASK_UNITS.get(task)
        if unit is not None:
            with contextlib.suppress(AttributeError):
                task._tl_joined = True
            record(s.Op.JOIN, next_seq(), unit[0], extra=_TASK, depth=3)


class TracedTask(_TaskBase):
    """Installed as ``asyncio.tasks.Task``: awaiting it records ``join``."""

    def __await__(self) -> Generator[Any, None, Any]:
        if STATE.on and not self.done():
            unit = _core.TASK_UNITS.get(self)
            if unit is not None:
                record(_WAIT, next_seq(), unit[0], extra=_TASK)
        try:
            return (yield from super().__await__())
        finally:
            _join(self)

    __iter__ = __await__


TracedTask.__name__ = TracedTask.__qualname__ = "Task"


def _gathering_await(self: Any) -> Generator[Any, None, Any]:
    try:
        return (yield from aio_futures.Future.__await__(self))
    finally:
        if STATE.on and self.done():
            for child in getattr(self, "_children", ()):
                _join(child)


def _tg_create_task(self: Any, coro: Any, *, name: Any = None, context: Any = None) -> Any:
    task = _o(aio_taskgroups.TaskGroup, "create_task")(self, coro, name=name, context=context)
    try:
        self._tl_children.append(task)
    except AttributeError:
        self._tl_children = [task]
    return task


async def _tg_aexit(self: Any, et: Any, exc: Any, tb: Any) -> Any:
    try:
        return await _o(aio_taskgroups.TaskGroup, "__aexit__")(self, et, exc, tb)
    finally:
        for task in getattr(self, "_tl_children", ()):
            _join(task)


# -- run_in_executor / to_thread ---------------------------------------------------------
class _ExecutorFuture(_FutureBase):
    """The asyncio side of an executor's future: awaiting it receives the task's end."""

    _tl_name: str = ""

    def __await__(self) -> Generator[Any, None, Any]:
        rv = yield from super().__await__()
        if STATE.on:
            seq = next_seq()
            record(_RECV, seq, self._tl_name, extra={s.KIND: s.Kind.FUTURE})
        return rv

    __iter__ = __await__


# -- loop.create_future() -----------------------------------------------------------------
_FUT: Final = s.Kind.FUTURE


class TracedFuture(_FutureBase):
    """What ``loop.create_future()`` returns while recording: completing it sends, and the
    task that awaits it receives (a hand-off, as an asyncio reader-writer lock's is);
    a task that awaits it before it is done records a ``wait`` first.

    Only futures the program creates are recorded (those of the standard library's own
    machinery, a ``sleep``'s, are not: ``identify``), and only completions made from a
    task.
    """

    _tl_sync: Any = None

    def set_result(self, result: Any) -> None:
        self._tl_send()
        super().set_result(result)

    def set_exception(self, exception: Any) -> None:
        self._tl_send()
        super().set_exception(exception)

    def _tl_send(self) -> None:
        info = self._tl_sync
        if info is not None and STATE.on and not self.done() and _core.current_task_unit():
            self._tl_sent = True
            record(_SEND, next_seq(), info[0], extra=info[1])

    def __await__(self) -> Generator[Any, None, Any]:
        info = self._tl_sync
        if info is not None and STATE.on and not self.done() and _core.current_task_unit():
            # The task blocks until someone completes it (a hang when nobody does).
            record(_WAIT, next_seq(), info[0], extra=info[1])
        try:
            return (yield from super().__await__())
        finally:
            if STATE.on and getattr(self, "_tl_sent", False):
                record(_RECV, next_seq(), self._tl_sync[0], extra=self._tl_sync[1])

    __iter__ = __await__


TracedFuture.__name__ = TracedFuture.__qualname__ = "Future"


def _create_future(self: Any) -> Any:
    if not STATE.on:
        return _o(asyncio.BaseEventLoop, "create_future")(self)
    future = TracedFuture(loop=self)
    future._tl_sync = identify(future, "asyncio.Future", _FUT)
    return future


def _wrap_future(future: Any, *, loop: Any = None) -> Any:
    name = known_name(future)
    if not STATE.on or name is None or aio_futures.isfuture(future):
        return _o(aio_futures, "wrap_future")(future, loop=loop)
    if loop is None:
        loop = aio_events.get_event_loop()
    new = _ExecutorFuture(loop=loop)
    new._tl_name = name
    aio_futures._chain_future(future, new)  # type: ignore[attr-defined]
    return new


# -- asyncio.Lock --------------------------------------------------------------------------
def _lock_info(lock: Any) -> tuple[str, dict[str, Any]]:
    try:
        return lock._tl_lock  # type: ignore[no-any-return]
    except AttributeError:
        name, internal = lock_identity("asyncio.Lock")
        extra = {s.KIND: s.Kind.LOCK, s.INTERNAL: True} if internal else {s.KIND: s.Kind.LOCK}
        lock._tl_lock = (name, extra)
        return name, extra


def _lock_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _o(aio_locks.Lock, "__init__")(self, *args, **kwargs)
    if STATE.on:
        _lock_info(self)


async def _lock_acquire(self: Any) -> bool:
    if not STATE.on:
        return await _o(aio_locks.Lock, "acquire")(self)  # type: ignore[no-any-return]
    name, extra = _lock_info(self)
    t0 = _monotonic_ns()
    blocked = self._locked
    if blocked:
        record(s.Op.ACQUIRE_TRY, next_seq(), name, extra=extra)
    ok = await _o(aio_locks.Lock, "acquire")(self)
    seq = next_seq()
    if STATE.on:
        wait = _monotonic_ns() - t0 if blocked else 0
        record(s.Op.ACQUIRE, seq, name, extra={**extra, s.WAIT_NS: wait})
    return ok  # type: ignore[no-any-return]


def _lock_release(self: Any) -> None:
    if STATE.on and self._locked:
        name, extra = _lock_info(self)
        record(s.Op.RELEASE, next_seq(), name, extra=extra)
    _o(aio_locks.Lock, "release")(self)


# -- Event, Semaphore, Condition -------------------------------------------------------------
def _on(obj: Any, label: str, kind: str) -> Any:
    return info_of(obj, label, kind) if STATE.on else None


def _init_and_identify(owner: Any, label: str, kind: str) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        _o(owner, "__init__")(self, *args, **kwargs)
        if STATE.on:
            info = identify(self, label, kind)
            if owner is aio_locks.Condition and info is not None and not args and not kwargs:
                # Its own Lock is the program's lock (``async with cond:``).
                lk = self._lock
                name, _ = _lock_info(lk)
                lk._tl_lock = (name, {s.KIND: s.Kind.LOCK})

    return __init__


_EV, _SEM, _COND, _Q = s.Kind.EVENT, s.Kind.SEMAPHORE, s.Kind.CONDITION, s.Kind.QUEUE


def _event_set(self: Any) -> None:
    info = _on(self, "asyncio.Event", _EV)
    if info is not None and not self._value:
        record(_SEND, next_seq(), info[0], extra=info[1])
    _o(aio_locks.Event, "set")(self)


async def _handoff_wait(info: Any, blocks: bool, original: Awaitable[bool]) -> bool:
    """Await ``original`` (a wait for a hand-off): ``wait`` first if it ``blocks``, then
    ``recv`` once it returned."""
    if info is not None and blocks:
        record(_WAIT, next_seq(), info[0], extra=info[1])
    ok = await original
    if info is not None and STATE.on:
        seq = next_seq()
        record(_RECV, seq, info[0], extra=info[1])
    return ok


async def _event_wait(self: Any) -> bool:
    info = _on(self, "asyncio.Event", _EV)
    return await _handoff_wait(info, not self._value, _o(aio_locks.Event, "wait")(self))


async def _sem_acquire(self: Any) -> bool:
    info = _on(self, "asyncio." + type(self).__name__, _SEM)
    return await _handoff_wait(info, self.locked(), _o(aio_locks.Semaphore, "acquire")(self))


def _sem_release(self: Any) -> None:
    info = _on(self, "asyncio." + type(self).__name__, _SEM)
    if info is not None:
        record(_SEND, next_seq(), info[0], extra={**info[1], s.COUNT: 1})
    _o(aio_locks.Semaphore, "release")(self)


async def _cond_wait(self: Any) -> bool:
    info = _on(self, "asyncio.Condition", _COND)
    return await _handoff_wait(info, self.locked(), _o(aio_locks.Condition, "wait")(self))


def _cond_notify(self: Any, n: int = 1) -> None:
    info = _on(self, "asyncio.Condition", _COND)
    if info is not None and self.locked():
        woken = min(n, sum(1 for f in self._waiters if not f.done()))
        record(_SEND, next_seq(), info[0], extra={**info[1], s.COUNT: woken})
    _o(aio_locks.Condition, "notify")(self, n)


# -- Queue -----------------------------------------------------------------------------------
def _queue_init(self: Any, maxsize: int = 0) -> None:
    _o(aio_queues.Queue, "__init__")(self, maxsize)
    if STATE.on:
        info = identify(self, "asyncio." + type(self).__name__, _Q)
        if info is not None:
            hook_queue(self, info, isinstance(self, aio_queues.LifoQueue))


async def _queue_get(self: Any) -> Any:
    info = known_info(self)
    if info is not None and STATE.on and self.empty():
        record(_WAIT, next_seq(), info[0], extra=info[1])
    return await _o(aio_queues.Queue, "get")(self)


def _queue_task_done(self: Any) -> None:
    info = known_info(self)
    if info is not None and STATE.on and self._unfinished_tasks > 0:
        record(_SEND, next_seq(), info[0], extra=info[1])
    _o(aio_queues.Queue, "task_done")(self)


async def _queue_join(self: Any) -> None:
    info = known_info(self)
    if info is not None and STATE.on and self._unfinished_tasks:
        record(_WAIT, next_seq(), info[0], extra=info[1])
    await _o(aio_queues.Queue, "join")(self)
    if info is not None and STATE.on:
        seq = next_seq()
        record(_RECV, seq, info[0], extra=info[1])


# -- install -----------------------------------------------------------------------------------
def install() -> None:
    """Patch asyncio (idempotent)."""
    if _PATCHES:
        return
    for m in (aio_events, aio_futures, aio_locks, aio_queues, aio_taskgroups, aio_tasks):
        f = getattr(m, "__file__", None)
        if f:
            _core.SKIP_FILES.add(f)
    base = asyncio.BaseEventLoop
    _patch(base, "create_task", _create_task)
    _patch(base, "create_future", _create_future)
    _patch(aio_tasks, "Task", TracedTask)
    gathering = aio_tasks._GatheringFuture  # type: ignore[attr-defined]
    gathering.__await__ = gathering.__iter__ = _gathering_await
    _patch(aio_taskgroups.TaskGroup, "create_task", _tg_create_task)
    _patch(aio_taskgroups.TaskGroup, "__aexit__", _tg_aexit)
    _patch(aio_futures, "wrap_future", _wrap_future)
    L = aio_locks
    _patch(L.Lock, "__init__", _lock_init)
    _patch(L.Lock, "acquire", _lock_acquire)
    _patch(L.Lock, "release", _lock_release)
    _patch(L.Event, "__init__", _init_and_identify(L.Event, "asyncio.Event", _EV))
    _patch(L.Event, "set", _event_set)
    _patch(L.Event, "wait", _event_wait)
    _patch(L.Semaphore, "__init__", _init_and_identify(L.Semaphore, "asyncio.Semaphore", _SEM))
    _patch(L.Semaphore, "acquire", _sem_acquire)
    _patch(L.Semaphore, "release", _sem_release)
    # BoundedSemaphore.release checks for an over-release, then calls Semaphore.release.
    _patch(
        L.BoundedSemaphore,
        "__init__",
        _init_and_identify(L.BoundedSemaphore, "asyncio.BoundedSemaphore", _SEM),
    )
    _patch(L.Condition, "__init__", _init_and_identify(L.Condition, "asyncio.Condition", _COND))
    _patch(L.Condition, "wait", _cond_wait)
    _patch(L.Condition, "notify", _cond_notify)
    Q = aio_queues.Queue
    _patch(Q, "__init__", _queue_init)
    _patch(Q, "get", _queue_get)
    _patch(Q, "task_done", _queue_task_done)
    _patch(Q, "join", _queue_join)


def uninstall() -> None:
    """Restore everything ``install`` patched."""
    _PATCHES.restore()
    gathering = aio_tasks._GatheringFuture  # type: ignore[attr-defined]
    for attr in ("__await__", "__iter__"):
        if attr in gathering.__dict__:
            delattr(gathering, attr)
