"""Hand-offs of ``threading`` and ``queue`` recorded as send/recv edges.

``configure`` patches the methods of ``threading.Condition``, ``Semaphore``,
``BoundedSemaphore``, ``Event``, ``Barrier`` and ``queue.Queue`` (with its subclasses),
and replaces ``queue.SimpleQueue`` with a recording subclass. Each object gets a
readable identity at creation (``Event@file.py:12#3``, see
``tracelens.record.locks.lock_identity``); what each one records is listed in
``docs/primitives.md``. In short:

* the send side (``set``, ``release``, ``notify``, a barrier arrival, ``put``,
  ``task_done``) is recorded *before* it takes effect, the receive side (``wait``
  returned true, ``acquire``, a wake-up, a barrier's return, ``get``, ``join``)
  *after*, so a send always has a smaller ``seq`` than the recv it enables;
* ``wait`` is recorded before a call that is going to block;
* a queue's ``put`` carries ``msg``, a per-item number, and the ``get`` that returns
  that item carries the same ``msg``; in a bounded queue (``maxsize`` n) the k-th
  ``get`` also sends a slot message that the (k+n)-th ``put`` receives first (the get
  that frees a slot happens before the put that takes it); a barrier's arrivals and
  returns carry the barrier's generation as ``msg``.

Objects that the standard library creates for its own use (an ``Event``'s
``Condition``, the work queue of a thread pool, ``Thread``'s start event) record
nothing here: the primitive built on them records its own edge, and the locks
underneath are still recorded, marked ``internal``.

Recording never raises into user code and never calls user code.
"""

from __future__ import annotations

import _queue
import contextlib
import itertools
import queue
import threading
from collections import deque
from typing import Any, Final

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import STATE, next_seq, original_allocate_lock, record
from tracelens.record._patch import Patches
from tracelens.record.locks import TracedRLock, lock_identity, mark_program_lock

_SEND: Final = s.Op.SEND
_RECV: Final = s.Op.RECV
_WAIT: Final = s.Op.WAIT

#: Message numbers of queue items (process-wide, so a msg names one item).
_msgs = itertools.count(1)
_tls = threading.local()

Info = tuple[str, dict[str, Any]]


# -- identities ------------------------------------------------------------------------
def identify(obj: Any, label: str, kind: str) -> Info | None:
    """Name a new sync object after its creation site; ``None`` when it is internal.

    The result is stored on the object (``_tl_sync``). Internal objects (created by
    the standard library for its own use) are not recorded.
    """
    try:
        name, internal = lock_identity(label)
        info = None if internal else (name, {s.KIND: kind})
    except Exception:  # recording never raises into user code
        info = None
    with contextlib.suppress(Exception):
        obj._tl_sync = info
    return info


def info_of(obj: Any, label: str, kind: str) -> Info | None:
    """The object's identity; objects created before ``configure`` are named on first use."""
    try:
        return obj._tl_sync  # type: ignore[no-any-return]
    except AttributeError:
        return identify(obj, label, kind)


def known_info(obj: Any) -> Info | None:
    """The identity ``identify`` stored on the object; ``None`` if it has none or is internal.

    Unlike ``info_of`` it never names the object: for objects recorded only when they
    were identified at creation (queues).
    """
    return getattr(obj, "_tl_sync", None)


def _on(obj: Any, label: str, kind: str) -> Info | None:
    if not STATE.on:
        return None
    return info_of(obj, label, kind)


_PATCHES = Patches()
_patch = _PATCHES.set
_o = _PATCHES.original


# -- Condition -------------------------------------------------------------------------
_COND: Final = s.Kind.CONDITION


def _cond_init(self: Any, lock: Any = None) -> None:
    _o(threading.Condition, "__init__")(self, lock)
    if not STATE.on:
        return
    info = identify(self, "Condition", _COND)
    if lock is None and info is not None and isinstance(self._lock, TracedRLock):
        # The RLock a user's Condition makes for itself is the program's own lock:
        # the program takes it with ``with cond:``. It is not internal.
        mark_program_lock(self._lock)


def _cond_wait(self: Any, timeout: float | None = None) -> bool:
    info = _on(self, "Condition", _COND)
    if info is None or not self._is_owned():
        return _o(threading.Condition, "wait")(self, timeout)  # type: ignore[no-any-return]
    name, extra = info
    record(_WAIT, next_seq(), name, extra=extra)
    ok = _o(threading.Condition, "wait")(self, timeout)
    if ok and STATE.on:
        # After the wake-up and after the lock is held again.
        seq = next_seq()
        record(_RECV, seq, name, extra=extra)
    return ok  # type: ignore[no-any-return]


def _cond_notify(self: Any, n: int = 1) -> None:
    info = _on(self, "Condition", _COND)
    if info is not None and self._is_owned():
        name, extra = info
        woken = min(n, len(self._waiters))
        record(_SEND, next_seq(), name, extra={**extra, s.COUNT: woken})
    _o(threading.Condition, "notify")(self, n)


def _cond_notify_all(self: Any) -> None:
    info = _on(self, "Condition", _COND)
    if info is not None and self._is_owned():
        name, extra = info
        record(_SEND, next_seq(), name, extra={**extra, s.COUNT: len(self._waiters)})
    _o(threading.Condition, "notify")(self, len(self._waiters))


# -- Semaphore, BoundedSemaphore -------------------------------------------------------
_SEM: Final = s.Kind.SEMAPHORE


def _sem_init(self: Any, value: int = 1) -> None:
    _o(threading.Semaphore, "__init__")(self, value)
    if STATE.on:
        identify(self, type(self).__name__, _SEM)


def _bsem_init(self: Any, value: int = 1) -> None:
    # BoundedSemaphore.__init__ calls Semaphore.__init__ from threading.py, which names
    # it as internal; name it again from here, where the creator is the caller.
    _o(threading.BoundedSemaphore, "__init__")(self, value)
    if STATE.on:
        identify(self, type(self).__name__, _SEM)


def _sem_acquire(self: Any, blocking: bool = True, timeout: float | None = None) -> bool:
    info = _on(self, type(self).__name__, _SEM)
    acquire = _o(threading.Semaphore, "acquire")
    if info is None:
        return acquire(self, blocking, timeout)  # type: ignore[no-any-return]
    name, extra = info
    if blocking and self._value == 0:  # a hint: it is about to block
        record(_WAIT, next_seq(), name, extra=extra)
    ok = acquire(self, blocking, timeout)
    if ok and STATE.on:
        seq = next_seq()
        record(_RECV, seq, name, extra=extra)
    return ok  # type: ignore[no-any-return]


def _sem_release(self: Any, n: int = 1) -> None:
    info = _on(self, type(self).__name__, _SEM)
    if info is not None and n >= 1:
        name, extra = info
        record(_SEND, next_seq(), name, extra={**extra, s.COUNT: n})
    _o(threading.Semaphore, "release")(self, n)


def _bsem_release(self: Any, n: int = 1) -> None:
    info = _on(self, type(self).__name__, _SEM)
    # An over-release raises ValueError and hands nothing over: not recorded.
    if info is not None and n >= 1 and self._value + n <= self._initial_value:
        name, extra = info
        record(_SEND, next_seq(), name, extra={**extra, s.COUNT: n})
    _o(threading.BoundedSemaphore, "release")(self, n)


# -- Event -------------------------------------------------------------------------------
_EVENT: Final = s.Kind.EVENT


def _event_init(self: Any) -> None:
    _o(threading.Event, "__init__")(self)
    if STATE.on:
        identify(self, "Event", _EVENT)


def _event_set(self: Any) -> None:
    info = _on(self, "Event", _EVENT)
    if info is not None:
        record(_SEND, next_seq(), info[0], extra=info[1])
    _o(threading.Event, "set")(self)


def _event_wait(self: Any, timeout: float | None = None) -> bool:
    info = _on(self, "Event", _EVENT)
    wait = _o(threading.Event, "wait")
    if info is None:
        return wait(self, timeout)  # type: ignore[no-any-return]
    name, extra = info
    if not self._flag:
        record(_WAIT, next_seq(), name, extra=extra)
    ok = wait(self, timeout)
    if ok and STATE.on:
        seq = next_seq()
        record(_RECV, seq, name, extra=extra)
    return ok  # type: ignore[no-any-return]


def _event_is_set(self: Any) -> bool:
    flag = self._flag
    if flag and STATE.on:
        seq = next_seq()
        info = info_of(self, "Event", _EVENT)
        if info is not None:
            record(_RECV, seq, info[0], extra=info[1])
    return flag  # type: ignore[no-any-return]


# -- Barrier -----------------------------------------------------------------------------
_BARRIER: Final = s.Kind.BARRIER


def _barrier_init(self: Any, parties: int, action: Any = None, timeout: Any = None) -> None:
    _o(threading.Barrier, "__init__")(self, parties, action, timeout)
    self._tl_gen = 0
    if STATE.on:
        identify(self, "Barrier", _BARRIER)


def _gens() -> dict[int, int]:
    try:
        return _tls.gens  # type: ignore[no-any-return]
    except AttributeError:
        d = _tls.gens = {}
        return d


def _barrier_enter(self: Any) -> None:
    # Called by Barrier.wait under the barrier's lock; once it returns, this party
    # is counted in the current generation: its arrival is a send of that generation.
    _o(threading.Barrier, "_enter")(self)
    info = _on(self, "Barrier", _BARRIER)
    if info is not None:
        gen = getattr(self, "_tl_gen", 0)
        _gens()[id(self)] = gen
        name, extra = info
        record(_SEND, next_seq(), name, extra={**extra, s.MSG: gen, s.COUNT: self._parties})


def _barrier_release(self: Any) -> None:
    # The last party: under the lock, before the others are woken.
    try:
        _o(threading.Barrier, "_release")(self)
    finally:
        self._tl_gen = getattr(self, "_tl_gen", 0) + 1


def _barrier_break(self: Any) -> None:
    _o(threading.Barrier, "_break")(self)
    self._tl_gen = getattr(self, "_tl_gen", 0) + 1


def _barrier_reset(self: Any) -> None:
    _o(threading.Barrier, "reset")(self)
    self._tl_gen = getattr(self, "_tl_gen", 0) + 1


def _barrier_wait_inner(self: Any, timeout: Any) -> Any:
    info = _on(self, "Barrier", _BARRIER)
    if info is not None:
        record(_WAIT, next_seq(), info[0], extra=info[1])
    return _o(threading.Barrier, "_wait")(self, timeout)


def _barrier_wait(self: Any, timeout: float | None = None) -> int:
    index = _o(threading.Barrier, "wait")(self, timeout)
    gen = _gens().pop(id(self), None)
    if gen is not None and STATE.on:
        seq = next_seq()
        info = info_of(self, "Barrier", _BARRIER)
        if info is not None:
            name, extra = info
            record(_RECV, seq, name, extra={**extra, s.MSG: gen, s.COUNT: self._parties})
    return index  # type: ignore[no-any-return]


# -- queue.Queue and subclasses ------------------------------------------------------------
_QUEUE: Final = s.Kind.QUEUE


def hook_queue(q: Any, info: Info, lifo: bool) -> None:
    """Record a queue's items going in (send) and out (recv) with matching ``msg``.

    Wraps the instance's ``_put``/``_get`` (called under the queue's own lock, so the
    order of the bookkeeping is the order of the queue). The items are not wrapped:
    ``q.queue`` and ``get()`` see the user's objects. Items are matched by identity;
    when one object is in the queue several times, FIFO (LIFO for a LIFO queue) order
    decides which ``put`` a ``get`` pairs with.
    """
    cls = type(q)
    put_item = cls._put
    get_item = cls._get
    name, extra = info
    pending: dict[int, deque[int]] = {}
    # A bounded queue's slots: the k-th get frees the slot the (k + maxsize)-th put takes
    # (as a buffered channel's capacity orders them in Go): get number -> its msg.
    slots: dict[int, int] = {}
    counts = [0, 0]  # puts, gets

    def _put(item: Any) -> None:
        msg = next(_msgs)
        d = pending.get(id(item))
        if d is None:
            d = pending[id(item)] = deque()
        d.append(msg)
        counts[0] += 1
        freed = slots.pop(counts[0] - q.maxsize, None) if q.maxsize > 0 else None
        if STATE.on:
            if freed is not None:  # this put took the slot that get freed
                record(_RECV, next_seq(), name, extra={**extra, s.MSG: freed})
            # NOTE: before the item is in the queue, so the send precedes its recv.
            record(_SEND, next_seq(), name, extra={**extra, s.MSG: msg})
        put_item(q, item)

    def _get() -> Any:
        item = get_item(q)
        seq = next_seq()
        msg = None
        d = pending.get(id(item))
        if d:
            msg = d.pop() if lifo else d.popleft()
            if not d:
                del pending[id(item)]
        counts[1] += 1
        slot = next(_msgs) if q.maxsize > 0 else None
        if slot is not None:
            slots[counts[1]] = slot
        if STATE.on:
            record(_RECV, seq, name, extra=extra if msg is None else {**extra, s.MSG: msg})
            if slot is not None:
                record(_SEND, next_seq(), name, extra={**extra, s.MSG: slot})
        return item

    q._put = _put
    q._get = _get


def _queue_init(self: Any, maxsize: int = 0) -> None:
    _o(queue.Queue, "__init__")(self, maxsize)
    if STATE.on:
        info = identify(self, type(self).__name__, _QUEUE)
        if info is not None:
            hook_queue(self, info, isinstance(self, queue.LifoQueue))


def _qlen(q: Any) -> int:
    try:
        return len(q.queue)
    except Exception:
        return 1  # unknown: assume it will not block


def _queue_put(self: Any, item: Any, block: bool = True, timeout: float | None = None) -> None:
    info = getattr(self, "_tl_sync", None)
    if info is not None and block and STATE.on and 0 < self.maxsize <= _qlen(self):
        record(_WAIT, next_seq(), info[0], extra=info[1])
    _o(queue.Queue, "put")(self, item, block, timeout)


def _queue_get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
    info = getattr(self, "_tl_sync", None)
    if info is not None and block and STATE.on and not _qlen(self):
        record(_WAIT, next_seq(), info[0], extra=info[1])
    return _o(queue.Queue, "get")(self, block, timeout)


def _queue_task_done(self: Any) -> None:
    info = getattr(self, "_tl_sync", None)
    if info is not None and STATE.on and self.unfinished_tasks > 0:
        record(_SEND, next_seq(), info[0], extra=info[1])
    _o(queue.Queue, "task_done")(self)


def _queue_join(self: Any) -> None:
    info = getattr(self, "_tl_sync", None)
    if info is None or not STATE.on:
        _o(queue.Queue, "join")(self)
        return
    name, extra = info
    if self.unfinished_tasks:
        record(_WAIT, next_seq(), name, extra=extra)
    _o(queue.Queue, "join")(self)
    if STATE.on:
        seq = next_seq()
        record(_RECV, seq, name, extra=extra)


# -- queue.SimpleQueue ---------------------------------------------------------------------
_ORIGINAL_SIMPLE_QUEUE: Final = _queue.SimpleQueue


class _SimpleQueueMeta(type):
    # isinstance(q, queue.SimpleQueue) stays true for queues made before configure().
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _ORIGINAL_SIMPLE_QUEUE)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _ORIGINAL_SIMPLE_QUEUE)


class TracedSimpleQueue(_ORIGINAL_SIMPLE_QUEUE, metaclass=_SimpleQueueMeta):  # type: ignore[misc,valid-type]
    """Installed as ``queue.SimpleQueue``: ``put`` sends and ``get`` receives, with ``msg``."""

    def __init__(self) -> None:
        self._tl_pending: dict[int, deque[int]] = {}
        # An original lock (never recorded): keeps the msg order the queue's order.
        self._tl_lock = original_allocate_lock()
        self._tl_sync = identify(self, "SimpleQueue", _QUEUE) if STATE.on else None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        info = self._tl_sync
        if info is None:
            _ORIGINAL_SIMPLE_QUEUE.put(self, item, block, timeout)
            return
        with self._tl_lock:
            msg = next(_msgs)
            d = self._tl_pending.get(id(item))
            if d is None:
                d = self._tl_pending[id(item)] = deque()
            d.append(msg)
            if STATE.on:
                record(_SEND, next_seq(), info[0], extra={**info[1], s.MSG: msg})
            _ORIGINAL_SIMPLE_QUEUE.put(self, item, block, timeout)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        info = self._tl_sync
        if info is None:
            return _ORIGINAL_SIMPLE_QUEUE.get(self, block, timeout)
        if block and STATE.on and self.empty():
            record(_WAIT, next_seq(), info[0], extra=info[1])
        item: Any = _ORIGINAL_SIMPLE_QUEUE.get(self, block, timeout)
        with self._tl_lock:
            seq = next_seq()
            msg = None
            d = self._tl_pending.get(id(item))
            if d:
                msg = d.popleft()
                if not d:
                    del self._tl_pending[id(item)]
        if STATE.on:
            record(_RECV, seq, info[0], extra=info[1] if msg is None else {**info[1], s.MSG: msg})
        return item

    def get_nowait(self) -> Any:
        return self.get(False)


TracedSimpleQueue.__name__ = TracedSimpleQueue.__qualname__ = "SimpleQueue"


# -- install ---------------------------------------------------------------------------------
def _skip(*modules: Any) -> None:
    for m in modules:
        f = getattr(m, "__file__", None)
        if f:
            _core.SKIP_FILES.add(f)


def install() -> None:
    """Patch the primitives (idempotent)."""
    if _PATCHES:
        return
    _skip(threading, queue)
    C, S, B, E, Ba, Q = (
        threading.Condition,
        threading.Semaphore,
        threading.BoundedSemaphore,
        threading.Event,
        threading.Barrier,
        queue.Queue,
    )
    _patch(C, "__init__", _cond_init)
    _patch(C, "wait", _cond_wait)
    _patch(C, "notify", _cond_notify)
    _patch(C, "notify_all", _cond_notify_all)
    _patch(S, "__init__", _sem_init)
    _patch(S, "acquire", _sem_acquire)
    _patch(S, "__enter__", _sem_acquire)
    _patch(S, "release", _sem_release)
    _patch(B, "__init__", _bsem_init)
    _patch(B, "release", _bsem_release)
    _patch(E, "__init__", _event_init)
    _patch(E, "set", _event_set)
    _patch(E, "wait", _event_wait)
    _patch(E, "is_set", _event_is_set)
    _patch(Ba, "__init__", _barrier_init)
    _patch(Ba, "wait", _barrier_wait)
    _patch(Ba, "_enter", _barrier_enter)
    _patch(Ba, "_wait", _barrier_wait_inner)
    _patch(Ba, "_release", _barrier_release)
    _patch(Ba, "_break", _barrier_break)
    _patch(Ba, "reset", _barrier_reset)
    _patch(Q, "__init__", _queue_init)
    _patch(Q, "put", _queue_put)
    _patch(Q, "get", _queue_get)
    _patch(Q, "task_done", _queue_task_done)
    _patch(Q, "join", _queue_join)
    _patch(queue, "SimpleQueue", TracedSimpleQueue)


def uninstall() -> None:
    """Restore everything ``install`` patched."""
    _PATCHES.restore()
