"""``configure`` and ``shutdown``: switch recording on and off.

This is the only module that changes the recorder's global state
(``tracelens.record._core.STATE``, where it all lives) and patches the standard
library. It also makes what a spawned child unpickles to record too
(``STATE.child``, see ``tracelens.record.processes``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Final, Literal

from tracelens import schema as s
from tracelens.record import _core, _hooks, locks, processes, sync, threads
from tracelens.record._core import STATE, bound_unit_state, forget_unit_state, unit_state
from tracelens.record._patch import Patches
from tracelens.record._sink import Sink

#: How far ``stress=True`` shrinks the interpreter's thread switch interval (seconds).
STRESS_SWITCH_INTERVAL = 1e-6


def configure(
    path: str | os.PathLike[str] | None,
    *,
    stress: bool = False,
    flush_interval: float = 0.2,
    buffer_size: int = 1024,
    stack_depth: int = _core.DEFAULT_STACK_DEPTH,
    instrument: bool | Sequence[str] = True,
    configure_structlog: bool = True,
    emit: Literal["file", "structlog"] = "file",
) -> None:
    """Record this program's shared accesses and synchronisation to a trace.

    Calling it again with the same arguments does nothing; with other arguments it
    shuts the current recording down and starts anew. Under ``tracelens run`` the
    program's own calls do nothing: the command line's ``-o`` and ``--stress`` win.

    Args:
        path: The JSON-lines trace file (appended to; several processes may share it).
            May be ``None`` only with ``emit="structlog"``.
        stress: Shrink ``sys.setswitchinterval`` so that interleavings that hide under
            the default scheduling show up (for test runs).
        flush_interval: Seconds between background writes of the buffered events.
        buffer_size: Events a thread buffers before it writes them itself.
        stack_depth: Frames of each event's call stack to record, the call site first
            (0 to 64; 0: call sites only). Stacks are interned: each distinct frame is
            written once, as a ``stack`` line, and events name their innermost frame.
        instrument: Replace ``threading.Lock``/``RLock``, the ``_thread`` locks and
            ``Thread.start``/``join`` with recorded versions (for objects created
            from now on). A sequence of module patterns (``["myapp.*", "botocore.*"]``)
            does that and also records the shared-state accesses of those modules
            when they are imported from now on (``docs/instrumentation.md``); the
            matching modules already imported cannot be, and one stderr line names
            them.
        configure_structlog: Configure structlog so that the application's own
            structlog lines go to the same file (as application lines, with the
            trace context from ``tracelens.processors.add_trace_context``).
        emit: ``"file"`` writes to ``path``; ``"structlog"`` hands each event to
            ``structlog.get_logger("tracelens")``, i.e. the application's own chain.

    A ``path`` that cannot be opened for appending (a missing directory, no
    permission) does not raise: one line on stderr says so, and the program runs on
    unrecorded (``is_configured()`` is false).

    Raises:
        ValueError: A bad combination of arguments.
    """
    settings: dict[str, Any] = {
        "path": None if path is None else os.path.abspath(os.fspath(path)),
        "stress": stress,
        "flush_interval": flush_interval,
        "buffer_size": buffer_size,
        "stack_depth": stack_depth,
        "instrument": instrument if isinstance(instrument, bool) else tuple(instrument),
        "configure_structlog": configure_structlog,
        "emit": emit,
    }
    if STATE.on and (STATE.pinned or STATE.settings == settings):
        return
    if emit not in ("file", "structlog"):
        raise ValueError(f"emit must be 'file' or 'structlog', not {emit!r}")
    if emit == "file" and path is None:
        raise ValueError("configure() needs a path to write the trace to")
    if buffer_size < 1 or flush_interval <= 0:
        raise ValueError("buffer_size and flush_interval must be positive")
    if type(stack_depth) is not int or not 0 <= stack_depth <= _core.MAX_STACK_DEPTH:
        raise ValueError(f"stack_depth must be an int from 0 to {_core.MAX_STACK_DEPTH}")
    if STATE.on:
        shutdown()

    try:
        sink = Sink(
            settings["path"] if emit == "file" else None,
            flush_interval=flush_interval,
            emit=_structlog_emitter() if emit == "structlog" else None,
        )
    except OSError as e:  # recording never raises into the program: it runs unrecorded
        print(
            f"tracelens: cannot write the trace to {settings['path']}: {e.strerror or e}; "
            "not recording, the program goes on",
            file=sys.stderr,
            flush=True,
        )
        return
    _fill_skip_files()
    STATE.pid = os.getpid()
    STATE.buffer_size = buffer_size
    STATE.stack_depth = stack_depth
    STATE.sink = sink
    unit_state()  # the calling thread gets its unit before anything else records
    sink.write_event(_meta())
    STATE.on = True
    sink.start()
    _hooks.when_imported("asyncio", _core.asyncio_imported)  # tasks as units, from then on
    if instrument:
        _instrument()
    if not isinstance(instrument, bool):
        _rewrite_modules(list(instrument))
    if configure_structlog and emit == "file":
        # configured when the program imports structlog (now, if it has already)
        _hooks.when_imported("structlog", _configure_structlog)
    if stress:
        STATE.saved["switchinterval"] = sys.getswitchinterval()
        sys.setswitchinterval(STRESS_SWITCH_INTERVAL)
    _install_process_hooks()
    STATE.settings = settings
    STATE.child = _child_config(settings)


def _configure_structlog(structlog: Any) -> None:
    """Send the application's structlog lines to the trace (``configure_structlog``)."""
    import orjson

    from tracelens.record.processors import TraceLoggerFactory, add_trace_context

    if not STATE.on:
        return
    STATE.saved["structlog"] = (structlog.is_configured(), structlog.get_config())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.dict_tracebacks,
            add_trace_context,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=TraceLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def _rewrite_modules(patterns: list[str]) -> None:
    """Rewrite the modules matching ``patterns`` from now on; say which were too late.

    The rewriter is imported here, not with the recorder: most recordings never use it.
    """
    from tracelens.record import instrument

    finder = instrument.install(patterns)
    STATE.saved["instrument"] = instrument.uninstall
    missed = instrument.already_imported(finder)
    if missed:
        shown = ", ".join(missed[:5]) + (f" and {len(missed) - 5} more" if len(missed) > 5 else "")
        print(
            f"tracelens: imported before configure(), not instrumented: {shown}",
            file=sys.stderr,
            flush=True,
        )


def shutdown() -> None:
    """Flush the trace, stop recording and restore everything ``configure`` changed.

    Locks created while recording keep working; they just stop recording. Safe to
    call when not configured.
    """
    if not STATE.on and STATE.sink is None:
        return
    STATE.on = False
    STATE.pinned = False
    undo_rewrite = STATE.saved.pop("instrument", None)
    if undo_rewrite is not None:
        undo_rewrite()
    _uninstall()
    sink = STATE.sink
    STATE.sink = None
    if sink is not None:
        sink.close()
    saved = STATE.saved
    _hooks.cancel_all()
    if "structlog" in saved:
        import structlog

        was, config = saved.pop("structlog")
        if was:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
    if "switchinterval" in saved:
        sys.setswitchinterval(saved.pop("switchinterval"))
    STATE.settings = None
    STATE.child = None


def switch_trace(path: str | os.PathLike[str]) -> bool:
    """Go on recording into a new trace file: what is buffered goes to the current one.

    Everything else stays as it is (patches, instrumentation, units); the new file
    starts with a process line, as a new recording does. The pytest plugin keeps a
    trace per test this way.

    Args:
        path: The new trace file (truncated).

    Returns:
        Whether the switch happened: ``False`` when not recording to a file, or when
        ``path`` cannot be opened (one stderr line; recording goes on where it was).
    """
    sink = STATE.sink
    if not STATE.on or sink is None or sink.path is None:
        return False
    try:
        sink.reopen(path)
    except OSError as e:
        print(
            f"tracelens: cannot write the trace to {os.fspath(path)}: {e.strerror or e}; "
            f"recording goes on into {sink.path}",
            file=sys.stderr,
            flush=True,
        )
        return False
    sink.write_event(_meta())
    if STATE.settings is not None:
        STATE.settings["path"] = os.path.abspath(os.fspath(path))
        STATE.child = _child_config(STATE.settings)
    return True


def pin() -> None:
    """Make the current recording's settings final until ``shutdown`` (``tracelens run``)."""
    STATE.pinned = STATE.on


def flush() -> None:
    """Write every buffered event now (``configure`` does this in the background)."""
    sink = STATE.sink
    if sink is not None:
        sink.flush()


def is_configured() -> bool:
    """Whether tracelens is recording."""
    return STATE.on


# -- internals -----------------------------------------------------------------------
_LOCK_FACTORIES = Patches()
_patch = _LOCK_FACTORIES.set


def _instrument() -> None:
    # Patched when the program imports them (asyncio alone costs ~50 ms to import);
    # first, so that when they are imported already, importing our patches for them
    # happens before the locks are recorded (imports take the import system's locks).
    _hooks.when_imported("concurrent.futures", _install_futures)
    _hooks.when_imported("asyncio", _install_aio)
    locks.install(_patch)
    threads.install()
    sync.install()
    processes.install()


def _install_futures(_module: object) -> None:
    from tracelens.record import futures

    if STATE.on:
        futures.install()


def _install_aio(_module: object) -> None:
    from tracelens.record import aio

    if STATE.on:
        aio.install()


def _uninstall() -> None:
    _LOCK_FACTORIES.restore()
    aio = sys.modules.get("tracelens.record.aio")
    if aio is not None:
        aio.uninstall()
    processes.uninstall()
    futures = sys.modules.get("tracelens.record.futures")
    if futures is not None:
        futures.uninstall()
    sync.uninstall()
    threads.uninstall()


def _fill_skip_files() -> None:
    """Files whose frames are never a call site (see ``_core.SKIP_FILES``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = {os.path.join(here, f) for f in os.listdir(here) if f.endswith(".py")}
    files.add("<tracelens>")  # the helpers instrumented code calls (record/shadow.py)
    prefixes = (
        "threading",
        "queue",
        "asyncio",
        "concurrent",
        "multiprocessing",
        "contextlib",
        "_weakrefset",
    )
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] in prefixes:
            f = getattr(mod, "__file__", None)
            if f:
                files.add(f)
    _core.SKIP_FILES.update(files)


def _meta() -> dict[str, Any]:
    return {
        s.TL: s.FORMAT_VERSION,
        s.OP: s.Op.META,
        s.SEQ: _core.next_seq(),
        s.TS: time.monotonic_ns(),
        s.WALL: time.time(),
        s.PID: os.getpid(),
        s.PARENT_PID: os.getppid(),
        s.UNIT: unit_state().unit,
        s.TID: unit_state().tid,
        s.THREAD: unit_state().name,
        s.ARGV: list(sys.argv),
        s.PYTHON: sys.version.split()[0],
    }


def _structlog_emitter() -> Any:
    import structlog

    log = structlog.get_logger("tracelens")

    def emit(d: dict[str, Any]) -> None:
        ev = d.pop(s.OP)
        log.info(ev, **d)

    return emit


def _at_exit() -> None:
    # Flush, don't shut down: other atexit handlers may still log or lock.
    sink = STATE.sink
    if sink is not None:
        sink.stop()
        sink.flush()


def _before_fork() -> None:
    if STATE.on and STATE.sink is not None:
        STATE.sink.flush()


def _after_fork_in_child() -> None:
    sink = STATE.sink
    if not STATE.on or sink is None:
        return
    keep = bound_unit_state()
    STATE.pid = os.getpid()
    sink.after_fork_in_child(keep)
    if keep is None:
        forget_unit_state()
    sink.write_event(_meta())
    sink.start()
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        # multiprocessing children end with os._exit(): no atexit. Its finalizers run.
        mp_util.Finalize(None, _at_exit, exitpriority=-1000)


def _install_process_hooks() -> None:
    if STATE.hooks_installed:
        return
    STATE.hooks_installed = True
    atexit.register(_at_exit)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


# -- spawned children ------------------------------------------------------------------
#: The settings a child needs (``emit="structlog"`` cannot cross processes).
_CHILD_SETTINGS: Final = ("stress", "flush_interval", "buffer_size", "stack_depth", "instrument")


def _configure_child(
    path: str,
    settings: dict[str, Any],
    rewrite: tuple[tuple[str, ...], str | None] | None = None,
) -> None:
    """Run in a spawned child while it unpickles its preparation data (before it runs the
    parent's ``__main__`` again) and its process object: record as the parent does, and
    rewrite the modules the parent rewrites (``rewrite``: the patterns and project root,
    ``instrument.active()``). The second call, and any in a forked child, does nothing."""
    if STATE.on and STATE.settings is not None and STATE.settings.get("path") == path:
        return  # forked, or configured already: recording, and rewriting as the parent
    # not recording, or forked by a forkserver that an earlier recording started (it
    # records into that one's trace): record into this parent's
    with contextlib.suppress(Exception):  # recording never raises into user code
        configure(path, configure_structlog=False, **settings)
        if rewrite is not None and STATE.on:
            from tracelens.record import instrument

            instrument.follow_into_child(*rewrite)
            STATE.saved["instrument"] = instrument.uninstall


def _rewriting() -> tuple[tuple[str, ...], str | None] | None:
    """What this process rewrites, for a child started now (``instrument.active``)."""
    instrument = sys.modules.get("tracelens.record.instrument")
    return None if instrument is None else instrument.active()


#: Run in a spawned child when it unpickles its preparation data, where the parent's
#: ``sys.path`` is not set yet: when tracelens cannot be imported there, the process
#: object's ``_ChildConfig`` configures the child later (its ``__main__`` unrewritten).
_EARLY: Final = """
try:
    from tracelens.record._config import _configure_child
except Exception:
    pass
else:
    _configure_child(*args)
"""

#: The ``-c`` program of a forkserver (``multiprocessing.forkserver``), and what goes
#: before it: the server records (as a process of its own) and rewrites what the parent
#: does, so that the ``__main__`` it preloads, and the locks that creates, are the
#: instrumented ones in the children it forks (which then record as forked children).
_FORKSERVER: Final = "from multiprocessing.forkserver import main"
_FORKSERVER_PREFIX: Final = """
try:
    from tracelens.record._config import _configure_child as _tl_configure
except Exception:
    pass
else:
    _tl_configure(*{args!r})
    del _tl_configure
"""


class _ChildConfig:
    """Pickled with the process object; unpickling it configures the child.

    ``early()`` goes into the child's preparation data, which the child unpickles before
    it imports the parent's ``__main__``; ``forkserver_args`` rewrites a forkserver's
    command line (``tracelens.record.processes``).
    """

    __slots__ = ("path", "settings")

    def __init__(self, path: str, settings: dict[str, Any]) -> None:
        self.path = path
        self.settings = settings

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_configure_child, (self.path, self.settings, _rewriting()))

    def early(self) -> _EarlyConfig:
        """What the preparation data carries (see ``_EARLY``)."""
        return _EarlyConfig((self.path, self.settings, _rewriting()))

    def forkserver_args(self, args: list[str]) -> list[str]:
        """A forkserver's command line (``exe, flags..., -c, program``), its program
        prefixed so that it records and rewrites as this process does (``_FORKSERVER``);
        any other command line unchanged."""
        if len(args) < 2 or args[-2] != "-c" or not args[-1].startswith(_FORKSERVER):
            return args
        prefix = _FORKSERVER_PREFIX.format(args=(self.path, self.settings, _rewriting()))
        return [*args[:-1], prefix + args[-1]]


class _EarlyConfig:
    """Unpickles by running ``_EARLY`` (``exec`` is a builtin: it unpickles anywhere)."""

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (exec, (_EARLY, {"args": self.args}))


def _child_config(settings: dict[str, Any]) -> _ChildConfig | None:
    """What a spawned child of this recording unpickles (``STATE.child``)."""
    if settings.get("emit") != "file" or not settings.get("path"):
        return None
    return _ChildConfig(
        settings["path"], {k: settings[k] for k in _CHILD_SETTINGS if k in settings}
    )
