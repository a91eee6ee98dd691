"""The trace format: field names, operation names and the format version.

This module is the one place where a field of the trace is named. The recorder
(``tracelens.record``) writes these names, the importers (STD) produce them and
the loader (``tracelens.analyze.load``) reads them. It imports nothing beyond the
standard library, because the recorder runs inside users' programs.

A trace is a file of JSON lines. A line is a tracelens event when it is a JSON
object with the key ``tl`` (the format version); any other line (an application's
own log line, say) is skipped by the analyzer and counted. See
``docs/trace-format.md`` for the full description.
"""

from __future__ import annotations

from typing import Final

#: Version of the trace format written by this recorder. Bumped when the meaning of
#: an existing field changes or a line a reader must not count as malformed appears;
#: new optional fields of events do not bump it. 2: ``stack`` definition lines and the
#: events' ``stack`` field. Readers read every version up to theirs.
FORMAT_VERSION: Final = 2

# --- field names -------------------------------------------------------------------
TL: Final = "tl"  # int: format version; its presence marks a tracelens event
OP: Final = "event"  # str: what happened, one of the Op names (structlog's event key)
SEQ: Final = "seq"  # int: per-process sequence number; total order of one process
TS: Final = "ts"  # int: monotonic clock in nanoseconds (CLOCK_MONOTONIC)
PID: Final = "pid"  # int: process id
UNIT: Final = "unit"  # str: the unit of execution, unique within a process ("t3", "a7")
TID: Final = "tid"  # int: number of the thread the event ran on, unique within a process
THREAD: Final = "thread"  # str: that thread's name
TASK: Final = "task"  # str|null: asyncio task name, when the unit is a task
VAR: Final = "var"  # str: variable name, for read/write
OBJ: Final = "obj"  # str: synchronisation object, unit (fork/join) or region (atomic)
KIND: Final = "kind"  # str: kind of obj ("lock", "rlock", "thread", "queue", ...); on a
# write, "commuting" when it commutes with the variable's other commuting writes
VALUE: Final = "value"  # JSON scalar or str: short, bounded repr of the value
FILE: Final = "file"  # str: user-code call site: file name
LINE: Final = "line"  # int: call site line number
FUNC: Final = "func"  # str: call site function name
WAIT_NS: Final = "wait_ns"  # int: acquire: how long the acquire waited
INTERNAL: Final = "internal"  # bool: obj was created by a primitive for its own use
MSG: Final = "msg"  # int: send/recv: identity of the message handed over (matches pairs)
COUNT: Final = "count"  # int: barrier parties, semaphore value and the like
STACK: Final = "stack"  # int: the event's call stack, the id of a stack definition line

# stack definition lines only (``Op.STACK``): one frame of a call stack, interned
STACK_ID: Final = "id"  # int: the frame's id, unique within its process
STACK_PARENT: Final = "parent"  # int: the caller's frame id; absent for the outermost

# meta events only
ARGV: Final = "argv"
PYTHON: Final = "python"
WALL: Final = "wall"  # float: time.time() when ts was taken, to map ts to wall time
PARENT_PID: Final = "ppid"


class Op:
    """Operation names (the value of ``op``).

    Memory: ``read``, ``write`` on ``var``.

    Locks (``obj`` a lock): ``acquire_try`` before an acquire that has to block,
    ``acquire`` after the lock is held (with ``wait_ns``), ``acquire_fail`` when a
    timed or non-blocking attempt gave up, ``release`` before the lock is released.
    So sequence order respects lock order: a release always has a smaller ``seq``
    than the acquire that follows it.

    Units (``obj`` the child unit, e.g. ``"t5"``): ``fork`` in the parent before
    the child can run, ``begin`` as the child's first event, ``end`` as its last,
    ``join`` in the parent after the child finished.

    Hand-offs (``obj`` a queue, event, semaphore, barrier, condition, future...):
    ``send`` before the hand-off takes effect (put, set, release, notify,
    set_result), ``recv`` after it took effect (get, wait returned, acquire,
    result). Every ``recv`` on an object happens after the ``send`` with the same
    ``msg``, or when there is no ``msg``, after every earlier ``send`` on it.

    ``wait`` is recorded before a unit blocks on ``obj`` for anything other than a
    lock (a join, an event, a queue), so a hung run shows who waited for what.

    ``atomic_begin``/``atomic_end`` delimit a region the programmer meant to be
    atomic (``obj`` its name). ``meta`` is written once per process and recording.

    ``stack`` is not an event but a definition: one frame of a call stack (``id``,
    ``parent``, ``file``, ``line``, ``func``; no ``seq`` or ``unit``), written once per
    process the first time a stack reaches it. An event's ``stack`` field names its
    innermost frame; following ``parent`` gives its callers.
    """

    READ: Final = "read"
    WRITE: Final = "write"
    ACQUIRE_TRY: Final = "acquire_try"
    ACQUIRE: Final = "acquire"
    ACQUIRE_FAIL: Final = "acquire_fail"
    RELEASE: Final = "release"
    FORK: Final = "fork"
    BEGIN: Final = "begin"
    END: Final = "end"
    JOIN: Final = "join"
    SEND: Final = "send"
    RECV: Final = "recv"
    WAIT: Final = "wait"
    ATOMIC_BEGIN: Final = "atomic_begin"
    ATOMIC_END: Final = "atomic_end"
    META: Final = "meta"
    STACK: Final = "stack"


#: Every event's operation name, in a stable order (``Op.STACK`` is a definition, not an
#: event).
OPS: Final = (
    Op.READ,
    Op.WRITE,
    Op.ACQUIRE_TRY,
    Op.ACQUIRE,
    Op.ACQUIRE_FAIL,
    Op.RELEASE,
    Op.FORK,
    Op.BEGIN,
    Op.END,
    Op.JOIN,
    Op.SEND,
    Op.RECV,
    Op.WAIT,
    Op.ATOMIC_BEGIN,
    Op.ATOMIC_END,
    Op.META,
)

MEMORY_OPS: Final = frozenset({Op.READ, Op.WRITE})
LOCK_OPS: Final = frozenset({Op.ACQUIRE_TRY, Op.ACQUIRE, Op.ACQUIRE_FAIL, Op.RELEASE})
UNIT_OPS: Final = frozenset({Op.FORK, Op.BEGIN, Op.END, Op.JOIN})
HANDOFF_OPS: Final = frozenset({Op.SEND, Op.RECV, Op.WAIT})
ATOMIC_OPS: Final = frozenset({Op.ATOMIC_BEGIN, Op.ATOMIC_END})


class Kind:
    """Kinds of synchronisation objects (the value of ``kind``)."""

    LOCK: Final = "lock"
    RLOCK: Final = "rlock"
    THREAD: Final = "thread"
    PROCESS: Final = "process"
    TASK: Final = "task"
    CONDITION: Final = "condition"
    SEMAPHORE: Final = "semaphore"
    EVENT: Final = "event"
    BARRIER: Final = "barrier"
    QUEUE: Final = "queue"
    FUTURE: Final = "future"
    ATOMIC: Final = "atomic"
    #: On a ``write`` (not an object kind): the write commutes with every other
    #: commuting write of its variable (an insert or delete of one key of a key set,
    #: an append to a list), so only reads and plain writes of the variable conflict
    #: with it (``docs/analysis.md``, *Operations that commute*).
    COMMUTING: Final = "commuting"


#: Unit id prefixes: a thread unit is "t<n>", an asyncio task unit "a<n>".
THREAD_UNIT_PREFIX: Final = "t"
TASK_UNIT_PREFIX: Final = "a"
