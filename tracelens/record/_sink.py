"""The sink: turns per-thread buffers of event tuples into JSON lines on disk.

Threads append to their own buffers (``tracelens.record._core``). The sink takes a
buffer away whole (swapping in an empty list is atomic under the GIL), renders it
with orjson and appends it to the file with one ``os.write`` on a descriptor opened
with ``O_APPEND``. Each write holds whole lines only, so any number of threads and
processes can share one file without interleaving lines; a crash leaves at most a
truncated last line.

Buffers are written when they fill (by their own thread), every ``flush_interval``
seconds (by a background thread, so the trace of a hung or killed program is on
disk up to its last moments), before a fork, at ``shutdown`` and at exit.
"""

from __future__ import annotations

import _thread
import itertools
import os
import stat
import sys
from typing import TYPE_CHECKING, Any

import orjson

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import (
    NOVALUE,
    RAW,
    STATES,
    UnitState,
    bind_unit_state,
    original_allocate_lock,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_OPT = orjson.OPT_APPEND_NEWLINE
_MEMORY = s.MEMORY_OPS
#: Ops whose call site is the unit's code, given in their extra fields (the frame
#: that records them is the thread's bootstrap): the prefix leaves it out, so that
#: each line has one ``file``/``line``/``func``.
_SITE_IN_EXTRA = frozenset({s.Op.BEGIN, s.Op.END})

#: Longest string value kept; longer ones are cut and end with an ellipsis.
VALUE_LIMIT = 120


def bounded(v: Any) -> Any:
    if type(v) is str and len(v) > VALUE_LIMIT:
        return v[: VALUE_LIMIT - 1] + "\u2026"
    if type(v) is int and not -(2**63) <= v < 2**63:
        return f"<int {v.bit_length()} bits>"
    return v


def dumps(obj: Any, option: int | None = None) -> bytes:
    """``orjson.dumps`` that never fails on a string that is not valid UTF-8.

    A ``str`` with lone surrogates (an undecodable file name in ``sys.argv``, a
    thread name, a value) makes orjson raise; such strings are written with the
    surrogates as ``\\udcXX`` escapes instead of stopping all recording.
    """
    try:
        return orjson.dumps(obj, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(_scrub(obj), option=option)


def _scrub(obj: Any) -> Any:
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_scrub(k): _scrub(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v) for v in obj]
    return obj


_RECORD_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _raised_by_program(exc: BaseException) -> bool:
    """Whether an exception raised inside the recorder is the program's own.

    A signal handler runs at whatever instruction the main thread is at, recorder code
    included, and what it raises (a ``TimeoutError`` from an ``alarm`` handler,
    ``KeyboardInterrupt``) belongs to the program; an exception whose innermost frame is
    the recorder's is a failure to record.
    """
    if not isinstance(exc, Exception):
        return True
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return not tb.tb_frame.f_code.co_filename.startswith(_RECORD_DIR)


def _dumps_value(v: Any) -> bytes:
    """A value as it is rendered (the C renderer's fallback for what it leaves to orjson)."""
    return dumps(bounded(v))


class _Sites:
    """Cache of (code object, instruction offset) -> (file, line, function)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, int], tuple[str, int, str]] = {}

    def __call__(self, code: Any, lasti: int) -> tuple[str, int, str]:
        key = (code, lasti)
        hit = self._cache.get(key)
        if hit is None:
            line = code.co_firstlineno
            for start, end, ln in code.co_lines():
                if start <= lasti < end:
                    if ln is not None:
                        line = ln
                    break
            hit = (code.co_filename, line, code.co_name)
            self._cache[key] = hit
        return hit


class Sink:
    """Writes the events of every thread of this process to one trace.

    Args:
        path: The trace file (appended to, created if missing). ``None`` with
            ``emit`` given: hand events to that callable instead of a file.
        flush_interval: Seconds between background flushes.
        emit: Instead of writing, call ``emit(event_dict)`` per event (used to
            route events through the application's own structlog chain).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        flush_interval: float = 0.2,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.flush_interval = flush_interval
        self._emit = emit
        self._fd = -1
        if self.path is not None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._regular = self._fd >= 0 and stat.S_ISREG(os.fstat(self._fd).st_mode)
        self._sites = _Sites()
        self._prefixes: dict[tuple[Any, ...], bytes] = {}
        self._forget_stacks()
        self._failed = False
        self._stop = original_allocate_lock()  # an original lock: never recorded
        self._stop.acquire()
        self._stopped = original_allocate_lock()
        self._running = False
        self.pid = os.getpid()

    # -- call stacks ----------------------------------------------------------------
    def _forget_stacks(self) -> None:
        """Start the interned stacks anew (a new file or process needs their definitions)."""
        #: Stack key (``_core.py_stack``) -> the id of its innermost frame.
        self._stacks: dict[tuple[Any, ...], int] = {}
        #: (file, line, func, parent id) -> frame id: one definition per frame.
        self._frames: dict[tuple[str, int, str, int | None], int] = {}
        self._frame_ids = itertools.count(1)
        _core.forget_stacks()

    def stack_id(self, key: tuple[Any, ...]) -> int:
        """The id of a call stack, its frames' definitions put in the current thread's
        buffer the first time each frame (with its callers) is seen.

        Args:
            key: Code objects and instruction offsets, innermost frame first.
        """
        hit = self._stacks.get(key)
        if hit is not None:
            return hit
        if len(self._stacks) > 100_000:  # many distinct stacks: start over
            self._forget_stacks()
        parent: int | None = None
        # next() on a count is atomic: threads interning at once get distinct ids, and
        # each id has its definition (two of one frame at worst)
        for i in range(len(key) - 2, -1, -2):
            file, line, func = self._sites(key[i], key[i + 1])
            frame = (file, line, func, parent)
            fid = self._frames.get(frame)
            if fid is None:
                fid = self._frames[frame] = next(self._frame_ids)
                self._define_frame(fid, parent, file, line, func)
            parent = fid
        assert parent is not None
        self._stacks[key] = parent
        return parent

    def _define_frame(self, fid: int, parent: int | None, file: str, line: int, func: str) -> None:
        d: dict[str, Any] = {
            s.TL: s.FORMAT_VERSION,
            s.OP: s.Op.STACK,
            s.PID: self.pid,
            s.STACK_ID: fid,
        }
        if parent is not None:
            d[s.STACK_PARENT] = parent
        d[s.FILE], d[s.LINE], d[s.FUNC] = file, line, func
        # a raw line (both renderers copy it), with its dict for an emitter
        _core.unit_state().buf.append((RAW, dumps(d, option=_OPT), d))

    # -- background flusher ----------------------------------------------------------
    def start(self) -> None:
        """Start the background flusher (a raw thread: no Thread object, not recorded)."""
        self._running = True
        self._stopped.acquire()
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        bind_unit_state("flusher", -1, "tracelens-flusher").off = True
        try:
            while not self._stop.acquire(timeout=self.flush_interval):
                self.flush()
        finally:
            self._stopped.release()

    def stop(self) -> None:
        """Stop the background flusher and wait for it."""
        if self._running:
            self._running = False
            self._stop.release()
            self._stopped.acquire()
            self._stopped.release()

    # -- flushing --------------------------------------------------------------------
    def flush(self) -> None:
        """Write every thread's buffered events."""
        # list(dict.items()) runs in C: a consistent snapshot without a lock.
        for key, st in list(STATES.items()):
            dead = st.dead
            self.flush_unit(st)
            if dead:
                STATES.pop(key, None)

    def flush_unit(self, st: UnitState) -> None:
        """Write one thread's buffered events (called by that thread when it is full)."""
        chunk = st.buf
        if not chunk:
            return
        st.buf = []  # swap, not clear: the owner keeps appending to the new list
        try:
            self._write(st, chunk)
        except BaseException as exc:
            if self._emit is not None or not _raised_by_program(exc):
                if not isinstance(exc, Exception):
                    raise
                self._fail(exc)  # recording never raises into user code
                return
            # A signal handler's exception (or KeyboardInterrupt) arrived while writing:
            # it is the program's; what the chunk still holds goes out at the next flush.
            st.buf[:0] = chunk
            raise

    def _write(self, st: UnitState, chunk: list[tuple[Any, ...]]) -> None:
        """Write a chunk; the records written leave it (an exception leaves the rest)."""
        if self._failed:
            return
        if self._emit is not None:
            for rec in chunk:
                if rec[0] is not RAW:
                    self._emit(self._event_dict(st, rec))
                elif len(rec) == 3:  # a stack definition (application lines already went
                    self._emit(dict(rec[2]))  # through the app's chain)
            return
        if _core.speedups is not None:
            fd = self._fd
            try:
                self._render(st, chunk, fd)  # writes, and empties the chunk as it does
            except OSError:
                if self._fd == fd:
                    raise
                self._render(st, chunk, self._fd)  # the file changed under it (reopen)
            return
        data = self._py_render(st, chunk)
        chunk[:] = [(RAW, data)]
        view = memoryview(data)
        fd = self._fd
        try:
            while view:
                try:
                    n = os.write(fd, view)
                except OSError:
                    if self._fd == fd:
                        raise
                    fd = self._fd  # the file changed under it (reopen): go on there
                    continue
                view = view[n:]
        except OSError:
            raise
        except BaseException:
            # Raised by a signal handler, right after a write returned (a regular file's
            # writes are not interrupted) or from an interrupted one (a pipe's): the
            # first wrote all it was given, the second nothing.
            if self._regular:
                view = view[len(view) :]
            chunk[:] = [(RAW, bytes(view))] if view else []
            raise
        chunk.clear()

    def _render(self, st: UnitState, chunk: list[tuple[Any, ...]], fd: int = -1) -> bytes:
        """JSON lines for a chunk: in C when the accelerator is there, else in Python.

        With ``fd``, the C renderer writes them there itself, in pieces of whole lines
        as it goes, and returns ``b""``.
        """
        c = _core.speedups
        if c is None:
            return self._py_render(st, chunk)
        data = c.render(
            chunk,
            st,
            self._prefixes,
            self._prefix,
            _dumps_value,
            dumps,
            RAW,
            NOVALUE,
            VALUE_LIMIT,
            fd,
        )
        if len(self._prefixes) > 100_000:  # many distinct sites or targets: start over
            self._prefixes.clear()
        return b"" if data is None else data

    def _py_render(self, st: UnitState, chunk: Iterable[tuple[Any, ...]]) -> bytes:
        """JSON lines for a chunk, fast: what repeats is serialised once per site.

        An event's fixed part (op, target, unit, thread, call site) is rendered once
        into a prefix and cached; each event then only adds its seq, ts, value and
        extra fields.
        """
        cache = self._prefixes
        out: list[bytes] = []
        append = out.append
        for rec in chunk:
            op = rec[0]
            if op is RAW:
                line = rec[1]
                append(line if line.endswith(b"\n") else line + b"\n")
                continue
            _, seq, ts, target, value, code, lasti, task, extra, stack = rec
            key = (st, op, target, code, lasti, task)
            pre = cache.get(key)
            if pre is None:
                pre = cache[key] = self._prefix(st, op, target, code, lasti, task)
            tail = b'"seq":%d,"ts":%d' % (seq, ts)
            if stack is not None:
                tail += b',"stack":%d' % stack
            if value is not NOVALUE:
                tail += b',"value":' + dumps(bounded(value))
            if extra:
                tail += b"," + dumps(extra)[1:-1]
            append(pre + tail + b"}\n")
        if len(cache) > 100_000:  # many distinct sites or targets: start over
            cache.clear()
        return b"".join(out)

    def _event_dict(self, st: UnitState, rec: tuple[Any, ...]) -> dict[str, Any]:
        op, seq, ts, target, value, code, lasti, task, extra, stack = rec
        d = self._base(st, op, target, code, lasti, task)
        d[s.SEQ] = seq
        d[s.TS] = ts
        if stack is not None:
            d[s.STACK] = stack
        if value is not NOVALUE:
            d[s.VALUE] = bounded(value)
        if extra:
            d.update(extra)
        return d

    def _prefix(
        self, st: UnitState, op: str, target: str, code: Any, lasti: int, task: Any
    ) -> bytes:
        return dumps(self._base(st, op, target, code, lasti, task))[:-1] + b","

    def _base(
        self, st: UnitState, op: str, target: str, code: Any, lasti: int, task: Any
    ) -> dict[str, Any]:
        """The fields of an event that are the same every time its site records it."""
        file, line, func = self._sites(code, lasti)
        d: dict[str, Any] = {
            s.TL: s.FORMAT_VERSION,
            s.OP: op,
            s.PID: self.pid,
            s.UNIT: st.unit if task is None else task[0],
            s.TID: st.tid,
            s.THREAD: st.name,
        }
        if task is not None:
            d[s.TASK] = task[1]
        d[s.VAR if op in _MEMORY else s.OBJ] = target
        if op not in _SITE_IN_EXTRA:
            d[s.FILE] = file
            d[s.LINE] = line
            d[s.FUNC] = func
        return d

    def write_event(self, d: dict[str, Any]) -> None:
        """Write one ready event dict now (meta events)."""
        try:
            if self._emit is not None:
                self._emit(dict(d))
            elif not self._failed:
                os.write(self._fd, dumps(d, option=_OPT))
        except Exception as exc:
            self._fail(exc)

    @property
    def failed(self) -> bool:
        """Whether a write failed (the error was said on stderr; recording stopped)."""
        return self._failed

    def _fail(self, exc: BaseException) -> None:
        if not self._failed:
            self._failed = True
            where = self.path or "the structlog chain"
            print(
                f"tracelens: cannot write the trace to {where}: {exc!r}; "
                "recording stops, the program goes on",
                file=sys.stderr,
            )

    def reopen(self, path: str | os.PathLike[str]) -> None:
        """Write what is buffered, then write to ``path`` (truncated) from now on.

        The background flusher is stopped meanwhile; a thread that writes its own full
        buffer while the file changes retries on the new one (``_write``).

        Raises:
            OSError: ``path`` cannot be opened; the sink keeps writing where it did.
        """
        new = os.open(os.fspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        running = self._running
        self.stop()
        self.flush()
        old, self._fd = self._fd, new
        self._forget_stacks()  # their definitions are in the old file
        self.path = os.fspath(path)
        self._regular = stat.S_ISREG(os.fstat(new).st_mode)
        if old >= 0:
            os.close(old)
        if running:
            self.start()

    # -- fork ------------------------------------------------------------------------
    def after_fork_in_child(self, keep: UnitState | None) -> None:
        """In a forked child: drop the parent's threads and their copied buffers."""
        STATES.clear()
        self.pid = os.getpid()
        self._prefixes = {}  # they hold the parent's pid
        self._forget_stacks()  # their definitions are the parent's
        self._running = False
        self._stop = original_allocate_lock()
        self._stop.acquire()
        self._stopped = original_allocate_lock()
        if keep is not None:
            keep.buf = []
            STATES[id(keep)] = keep

    def close(self) -> None:
        self.stop()
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
