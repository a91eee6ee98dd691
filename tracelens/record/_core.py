"""Global state department of the recorder, and its hot path.

Everything the recorder keeps between calls lives here: whether recording is on and
with which settings, what ``configure`` changed and restores at ``shutdown``, what a
spawned child needs to record too, the sequence counter, the per-thread and per-task
unit states and the active sink. Other modules read ``STATE`` and call ``record`` /
``unit_state``; only ``tracelens.record._config`` changes ``STATE``'s settings and
switches recording on and off. The instrumenting modules keep only what is theirs:
the originals they replaced (a ``Patches`` each) and the counters and caches behind
the names they give objects.

Why the hot path looks the way it does:

* ``next(SEQ)`` on an ``itertools.count`` is atomic under the GIL and takes no
  lock, so it gives every event of a process a total order for free.
* CPython (3.11+) only switches threads at an "eval breaker" check: at function
  entry, on backward jumps and after a call returns. So in ``v = d[k]; s =
  next_seq()`` no other thread can run between the access and taking its sequence
  number: the recorded order of accesses to one variable is the order in which they
  happened, and a read's recorded value is that of the latest recorded write. Memory
  operations therefore perform the access *first* and take the number right after.
  A release takes its number *before* the release, an acquire *after*, so that
  sequence order respects lock order.
* Events are appended as tuples to a list owned by the current thread: no lock,
  no system call. The sink serialises and writes them in batches.
* ``record`` and the sink's renderer have a C twin in ``_speedups`` (built when a
  compiler is there) that does exactly what the Python code does, only cheaper;
  ``TRACELENS_PURE_PYTHON=1`` forces the Python code, which is the reference.
"""

from __future__ import annotations

import _thread
import contextlib
import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from weakref import WeakKeyDictionary

from tracelens.accel import pure_python

if TYPE_CHECKING:
    from tracelens.record._sink import Sink

#: The lock factories as they were before any instrumentation: the recorder's own
#: locks are made with these, so they are never recorded.
original_allocate_lock: Final = _thread.allocate_lock
original_rlock: Final = _thread.RLock

#: ``sys._getframe``: the caller's frame, for call sites (a C function: no frame of its own).
getframe: Final = sys._getframe
_monotonic_ns = time.monotonic_ns
_get_ident = _thread.get_ident
#: The running asyncio loop, or ``None``. Until the program imports asyncio there is
#: none, and ``type(None)()`` (a C call that returns ``None``) stands in: importing
#: asyncio to ask would cost ~50 ms. ``asyncio_imported`` puts the real one in.
_get_running_loop: Callable[[], Any] = type(None)
#: asyncio's loop -> current task table (``asyncio_imported`` fills it in).
_current_tasks: dict[Any, Any] = {}

#: Marker for "no value recorded" (distinct from recording ``None``).
NOVALUE: Final = object()
#: First element of a record that holds an already rendered line (application logs).
RAW: Final = "\x00raw"


#: Files whose frames are never a call site: the recorder's own modules and the
#: standard library's synchronisation modules. Filled in by ``configure``.
SKIP_FILES: set[str] = set()


#: ``configure``'s default ``stack_depth``, and the most it takes (the C walk's array).
DEFAULT_STACK_DEPTH: Final = 8
MAX_STACK_DEPTH: Final = 64


class _State:
    """Mutable recorder-wide state. One instance: ``STATE``."""

    __slots__ = (
        "buffer_size",
        "child",
        "hooks_installed",
        "on",
        "pid",
        "pinned",
        "saved",
        "settings",
        "sink",
        "stack_depth",
        "units",
    )

    def __init__(self) -> None:
        self.on = False
        self.sink: Sink | None = None
        self.buffer_size = 1024
        #: Frames of each event's call stack recorded (``configure(stack_depth=...)``;
        #: 0: none).
        self.stack_depth = DEFAULT_STACK_DEPTH
        self.pid = os.getpid()
        self.units = itertools.count(1)  # "t0" is the main thread
        #: The arguments of the current ``configure`` (``None`` when not recording).
        self.settings: dict[str, Any] | None = None
        #: Set by ``tracelens run``: the command line decides, not the program.
        self.pinned = False
        #: What ``configure`` replaced and ``shutdown`` puts back (structlog's
        #: configuration, the switch interval).
        self.saved: dict[str, Any] = {}
        #: Whether the atexit and at-fork hooks are registered (once per process).
        self.hooks_installed = False
        #: The object a spawned child unpickles to record into the same trace
        #: (``None`` when children cannot record: no recording, or ``emit="structlog"``).
        self.child: object | None = None


STATE: Final = _State()
_STATE = STATE  # a plain global: one lookup less on the hot path than a Final re-export

#: Take the next number of the process-wide sequence. A C method, so calling it runs
#: no Python frame (and so no eval-breaker check) before the number is taken.
next_seq: Final[Callable[[], int]] = itertools.count().__next__


class UnitState:
    """What the recorder knows about one OS thread: its unit and its event buffer."""

    __slots__ = ("buf", "dead", "name", "off", "tid", "unit")

    def __init__(self, unit: str, tid: int, name: str) -> None:
        self.unit = unit
        self.tid = tid
        self.name = name
        self.buf: list[tuple[Any, ...]] = []
        self.off = False  # True for the recorder's own threads
        self.dead = False


_local = threading.local()


def new_unit_id() -> int:
    return next(STATE.units)


#: Every thread's state, by id: what the sink flushes. Threads add themselves (a dict
#: store is atomic); the sink removes the states of threads that ended.
STATES: dict[int, UnitState] = {}


def bind_unit_state(unit: str, tid: int, name: str) -> UnitState:
    """Create the current thread's state with a known unit (set when it was forked)."""
    st = UnitState(unit, tid, name)
    _local.st = st
    _state_changed()
    STATES[id(st)] = st
    return st


def _state_changed() -> None:
    """Tell the C ``record``, if it was loaded, that a thread's state was bound or
    forgotten: it caches each thread's state and looks them up again."""
    c = sys.modules.get("tracelens.record._speedups")
    if c is not None:
        c.unit_state_changed()


def _new_state() -> UnitState:
    # NOTE: never threading.current_thread() here: called while a thread is still
    # starting, it would create a _DummyThread and break the new thread.
    ident = _get_ident()
    t = threading._active.get(ident)  # type: ignore[attr-defined]
    n = 0 if t is not None and t is threading.main_thread() else new_unit_id()
    name = t.name if t is not None else f"thread-{ident}"
    return bind_unit_state(f"t{n}", n, name)


def unit_state() -> UnitState:
    """The current thread's state, created on first use."""
    try:
        return _local.st  # type: ignore[no-any-return]
    except AttributeError:
        return _new_state()


def bound_unit_state() -> UnitState | None:
    """The current thread's state if it has one (``None`` rather than creating it)."""
    try:
        st: UnitState = _local.st
    except AttributeError:
        return None
    return st


def forget_unit_state() -> None:
    """Drop the current thread's state (after fork, in the child)."""
    with contextlib.suppress(AttributeError):
        del _local.st
    _state_changed()


#: asyncio task -> (unit id, task name). Weak: a finished task does not stay alive.
#: ``task_unit`` fills it on first sight; ``aio`` sets it when it creates a task.
TASK_UNITS: WeakKeyDictionary[Any, tuple[str, str]] = WeakKeyDictionary()


def task_unit(task: Any) -> tuple[str, str]:
    """The unit id and name of an asyncio task, assigned on first sight."""
    try:
        return TASK_UNITS[task]
    except KeyError:
        info = (f"a{new_unit_id()}", task.get_name())
        TASK_UNITS[task] = info
        return info


def current_task_unit() -> tuple[str, str] | None:
    loop = _get_running_loop()
    if loop is None:
        return None
    task = _current_tasks.get(loop)
    if task is None:
        return None
    return task_unit(task)


def py_record(
    op: str,
    seq: int,
    target: str,
    value: Any = NOVALUE,
    extra: dict[str, Any] | None = None,
    depth: int = 2,
) -> None:
    """Append one event to the current thread's buffer.

    Args:
        op: The operation (``tracelens.schema.Op``).
        seq: Its sequence number, taken by the caller at the right moment.
        target: The variable (memory operations) or object.
        value: The value read or written, already made safe by ``safe_value``.
        extra: Further fields (``kind``, ``wait_ns``, ...).
        depth: Frames between this function and the user's call site.
    """
    made = py_event(op, seq, target, value, extra, depth + 1)
    if made is not None:
        py_append(*made)


def py_event(
    op: str,
    seq: int,
    target: str,
    value: Any = NOVALUE,
    extra: dict[str, Any] | None = None,
    depth: int = 2,
) -> tuple[UnitState, tuple[Any, ...], Any] | None:
    """The current thread's state, the record of one event, not yet appended to its
    buffer, and its call site's frame (``None`` in the recorder's own threads);
    ``py_record``'s arguments."""
    try:
        st = _local.st
    except AttributeError:
        st = _new_state()
    if st.off:
        return None
    f = getframe(depth)
    deep = _STATE.stack_depth
    # Calls that come through the standard library's primitives (a Condition's wait,
    # a Queue's put) are attributed to the user's line that called them.
    while f.f_code.co_filename in SKIP_FILES:
        back = f.f_back
        if back is None:
            deep = 0  # no user frame (a thread's begin): no stack
            break
        f = back
    stack = py_stack(f) if deep else None
    task = None if _get_running_loop() is None else current_task_unit()
    rec = (op, seq, _monotonic_ns(), target, value, f.f_code, f.f_lasti, task, extra, stack)
    return st, rec, f


def py_append(st: UnitState, rec: tuple[Any, ...], f: Any = None) -> None:
    """Append a record (``py_event``) to a unit's buffer, and write the buffer when full.

    ``st`` is the current thread's, or (an event kept aside, ``shadow``) another's: the
    append is one C call, so it never lands in a list the sink has already taken.
    ``f``: the event's frame, for a forced schedule (``None``: not a scheduling point)."""
    # NOTE: the buffer is read and appended to with no call in between (a call is a
    # switch point): read before the clock call, the list could be taken by the
    # flusher in the meantime and the event appended to a list already written.
    buf = st.buf
    buf.append(rec)
    if len(buf) >= _STATE.buffer_size:
        sink = _STATE.sink
        if sink is not None:
            sink.flush_unit(st)
    if schedule_point is not None and f is not None:
        schedule_point(rec, st, f)


def py_stack(f: Any) -> int | None:
    """The id of the interned call stack at frame ``f`` (``None`` when not recording).

    The stack is ``f`` (the call site) and its callers, up to ``STATE.stack_depth``
    frames, ending before the first frame of ``SKIP_FILES`` (a thread's bootstrap, the
    asyncio loop that runs a task, a pool's worker): the user's own frames. Its key is
    the frames' code objects and instruction offsets, innermost first; the sink interns
    it (``Sink.stack_id``). The C ``record`` caches the same keys (``_speedups.c``).
    """
    depth = _STATE.stack_depth
    key = [f.f_code, f.f_lasti]
    back = f.f_back
    n = 1
    while back is not None and n < depth:
        code = back.f_code
        if code.co_filename in SKIP_FILES:
            break
        key += (code, back.f_lasti)
        back = back.f_back
        n += 1
    return intern_stack(tuple(key))


def intern_stack(key: tuple[Any, ...]) -> int | None:
    """The id of a stack key (``py_stack``) in the active sink, defined there once."""
    sink = _STATE.sink
    return None if sink is None else sink.stack_id(key)


def forget_stacks() -> None:
    """Forget the C record's cached stack ids (the sink's interned stacks were reset)."""
    if speedups is not None:
        speedups.forget_stacks()


def asyncio_imported(_module: object = None) -> None:
    """The program has imported asyncio: ask it for running loops and tasks from now on."""
    global _get_running_loop, _current_tasks
    try:
        from _asyncio import _current_tasks as current  # type: ignore[attr-defined]
        from _asyncio import _get_running_loop as running
    except ImportError:  # an interpreter without asyncio's C accelerator
        from asyncio.events import _get_running_loop as running
        from asyncio.tasks import _current_tasks as current  # type: ignore[attr-defined]
    _get_running_loop, _current_tasks = running, current
    if speedups is not None:
        _setup(speedups)


def _setup(c: Any) -> None:
    c.setup(_local, _new_state, SKIP_FILES, _get_running_loop, current_task_unit, _STATE, NOVALUE)
    c.setup_stacks(intern_stack)


#: The environment variable that carries a schedule's plan to a child process
#: (``tracelens.record.schedule``): such a process records with the pure-Python code,
#: whose every event is a scheduling point.
SCHEDULE_ENV: Final = "TRACELENS_SCHEDULE"


def _load_speedups() -> Any:
    """The C accelerator, or ``None`` (not built, ``TRACELENS_PURE_PYTHON=1``, or a
    schedule to run)."""
    if pure_python() or os.environ.get(SCHEDULE_ENV):
        return None
    try:
        from tracelens.record import _speedups
    except ImportError:
        return None
    _setup(_speedups)
    return _speedups


#: ``tracelens.record._speedups`` when in use, else ``None``.
speedups: Final = _load_speedups()

#: Called with each event right after ``py_record`` buffered it, while a forced schedule
#: runs (``tracelens.record.schedule``); ``None`` otherwise.
schedule_point: Callable[[tuple[Any, ...], UnitState, Any], None] | None = None

#: Append one event to the current thread's buffer: ``py_record``, or its C twin.
record: Callable[..., None] = py_record if speedups is None else speedups.record


def use_pure_python() -> Callable[[], None]:
    """Record with ``py_record`` from now on in this process, and return what undoes it.

    For a schedule run in this process (``schedule.run_in_process``): the C ``record``
    does not call ``schedule_point``. Every recorder module that bound the C ``record``
    by name is rebound. Instrumented code compiled with the C helpers
    (``shadow``) still records through them, past the scheduler.
    """
    fast = record
    if fast is py_record:
        return lambda: None
    changed = [
        mod
        for name, mod in list(sys.modules.items())
        if (name == __package__ or name.startswith(f"{__package__}."))
        and getattr(mod, "record", None) is fast
    ]
    for mod in changed:
        vars(mod)["record"] = py_record

    def undo() -> None:
        for mod in changed:
            if getattr(mod, "record", None) is py_record:
                vars(mod)["record"] = fast

    return undo


_said: set[str] = set()


def say_once(what: str) -> None:
    """Tell the user on stderr, once per message, what the recorder could not do."""
    if what not in _said:
        _said.add(what)
        print(f"tracelens: {what}", file=sys.stderr, flush=True)


def record_raw(line: bytes) -> None:
    """Append an already rendered line (an application log line) to the buffer."""
    st = unit_state()
    if st.off:
        return
    st.buf.append((RAW, line))


#: Types whose values are recorded as they are (``safe_value``).
SCALARS: Final = frozenset({int, float, bool, str, type(None)})
#: Types whose values are recorded as their type and length (``safe_value``).
SIZED: Final = frozenset({list, dict, set, tuple, frozenset, bytes, bytearray, deque})


def safe_value(v: Any) -> Any:
    """What to record of a value, without calling any user code.

    Scalars are kept as they are (immutable, rendered and bounded when the buffer is
    written). Anything else becomes a short description of its type and size: its
    ``__repr__`` may be user code that blocks, raises or is slow, and a mutable
    container may change before the buffer is written.
    """
    t = type(v)
    if t in SCALARS:
        return v
    if t in SIZED:
        return f"<{t.__name__} len={len(v)}>"
    return f"<{t.__module__}.{t.__qualname__} object at {id(v):#x}>"


def key_text(key: Any) -> str:
    """How a key reads in a variable's name (``d['k']``), without calling user code.

    Only the exact builtin scalars (and tuples of them) are shown by ``repr``: a
    subclass's or another type's ``__repr__`` may raise, block or be slow.
    """
    t = type(key)
    if t in SCALARS or t is tuple:
        try:
            return repr(key) if t is not tuple else _tuple_text(key)
        except Exception:
            return f"<{t.__name__}>"
    return f"<{t.__name__}>"


def _tuple_text(key: tuple[Any, ...]) -> str:
    parts = [repr(k) if type(k) in SCALARS else f"<{type(k).__name__}>" for k in key]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
