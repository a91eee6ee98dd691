"""``tracelens run``: record a whole program without changing it, like ``coverage run``.

``run(["script.py", "arg"], output=...)`` configures the recorder first and then runs
the script as ``__main__`` (``module=True``: runs a module like ``python -m``), so
every module the program imports, and every lock a library creates or binds at
import time (``from threading import RLock``), is imported after ``configure`` and
recorded. When the script is done, its non-daemon threads are waited for (as the
interpreter would), the trace is flushed and its path printed on stderr.

Exit status: the script's (``sys.exit(n)`` gives ``n``, an uncaught exception prints
its traceback and gives 1). Signals pass through: an uncaught ``KeyboardInterrupt``
ends the process by ``SIGINT`` as Python itself does, and ``SIGTERM`` (when the
program has not set its own handler) flushes the trace and then ends the process by
``SIGTERM``.

This module imports nothing beyond the standard library and the recorder, so
``main()`` can run before anything else is imported.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final

from tracelens.record import _config, _core, instrument, schedule, shadow

#: Exit status for usage errors (a missing script, an unwritable trace).
EXIT_USAGE = 2


def default_output(target: str, *, module: bool) -> Path:
    """``<script or module name>.trace.jsonl`` in the current directory."""
    stem = target.rsplit(".", 1)[-1] if module else Path(target).stem
    return Path(f"{stem or 'tracelens'}.trace.jsonl")


def _say(msg: str) -> None:
    print(f"tracelens: {msg}", file=sys.stderr, flush=True)


def _exit_status(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback without the runner's, runpy's and the instrumentation's frames, so
    that it reads as the program's own would."""
    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in (__file__, instrument.__file__)
        or tb.tb_frame.f_globals.get("__name__") == "runpy"  # "<frozen runpy>" on 3.11+
    ):
        tb = tb.tb_next
    report = traceback.TracebackException(type(exc), exc, tb)
    _drop_own_frames(report, set())
    print("".join(report.format()), end="", file=sys.stderr)


#: Files whose frames instrumented code adds between the program's frames.
_OWN_FILES: Final = frozenset({shadow.__file__, "<tracelens>"})


def _drop_own_frames(report: traceback.TracebackException, seen: set[int]) -> None:
    """Leave the instrumentation's helpers out of a traceback and its chained ones."""
    if id(report) in seen:
        return
    seen.add(id(report))
    frames = [f for f in report.stack if f.filename not in _OWN_FILES]
    report.stack = traceback.StackSummary.from_list(frames)
    for chained in (report.__cause__, report.__context__):
        if chained is not None:
            _drop_own_frames(chained, seen)


def _join_non_daemon_threads() -> None:
    # What the interpreter does before it exits; the threads stay recorded meanwhile.
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon and t.is_alive():
            t.join()


def _on_sigterm(path: Path) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        _config.flush()
        sink = _core.STATE.sink
        if sink is None or not sink.failed:
            _say(f"trace written to {path} (terminated)")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    return handler


def project_settings(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``[tool.tracelens]`` of the ``pyproject.toml`` in ``root`` (empty when there is
    none, or it cannot be read): what ``tracelens run`` and the pytest plugin take from it."""
    import tomllib

    try:
        with open(Path(root) / "pyproject.toml", "rb") as f:
            table = tomllib.load(f).get("tool", {}).get("tracelens", {})
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _pyproject_patterns(root: Path) -> list[str]:
    """``[tool.tracelens] instrument`` of the project's ``pyproject.toml`` (module patterns)."""
    found = project_settings(root).get("instrument", [])
    if isinstance(found, str):
        found = [found]
    return [p for p in found if isinstance(p, str)] if isinstance(found, list) else []


def _run_script(path: str, *, rewritten: bool) -> None:
    """``runpy.run_path(path, run_name="__main__")``, the script rewritten (or not).

    The script's file name is made absolute, as ``python script.py`` makes its
    ``__file__`` and its tracebacks' file names; ``sys.argv[0]`` stays as given.
    """
    path = os.path.abspath(path)
    mod, g = instrument.main_namespace(path)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = mod
    try:
        instrument.run_script(path, g, rewritten=rewritten)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def run(
    argv: Sequence[str],
    *,
    output: str | os.PathLike[str] | None = None,
    module: bool = False,
    stress: bool = False,
    instrument_code: bool = True,
    patterns: Sequence[str] = (),
    stack_depth: int = _core.DEFAULT_STACK_DEPTH,
    defer_private: bool = True,
) -> int:
    """Record a script or module run as ``__main__``.

    Args:
        argv: The script's path (or the module's name) and its arguments.
        output: The trace file (overwritten); default ``<name>.trace.jsonl``.
        module: Run ``argv[0]`` as a module, like ``python -m``.
        stress: Record with ``configure(stress=True)``.
        instrument_code: Record the shared-state accesses of the script and of the
            modules of its project (``tracelens.record.instrument``), with no
            ``watch()`` needed.
        stack_depth: Frames of each event's call stack (``configure(stack_depth=...)``).
        patterns: More modules to instrument (``botocore.*``), besides those of
            ``[tool.tracelens] instrument`` in the project's ``pyproject.toml``.
        defer_private: Keep aside, and write only once another unit touches the
            object, the accesses of objects only one unit has touched
            (``shadow.defer_private``); ``False`` records every access.

    Returns:
        The program's exit status, or 2 when it could not be started.
    """
    if not argv:
        _say("run needs a script (or -m and a module) to run")
        return EXIT_USAGE
    if not 0 <= stack_depth <= _core.MAX_STACK_DEPTH:
        _say(f"--stack-depth must be from 0 to {_core.MAX_STACK_DEPTH}, not {stack_depth}")
        return EXIT_USAGE
    target, args = argv[0], list(argv[1:])
    path = Path(output) if output is not None else default_output(target, module=module)
    if not module and not os.path.exists(target):
        _say(f"cannot run {target}: no such file")
        return EXIT_USAGE
    try:
        path.write_bytes(b"")  # a new recording: earlier runs' events would mislead
    except OSError as e:
        _say(f"cannot write the trace to {path}: {e.strerror or e}")
        return EXIT_USAGE

    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    if module:
        sys.argv = [target, *args]  # runpy puts the module's file in argv[0]
        sys.path.insert(0, os.getcwd())
    else:
        sys.argv = [target, *args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm(path))

    _config.configure(path, stress=stress, stack_depth=stack_depth)
    _config.pin()  # the program's own configure() must not send the trace elsewhere
    schedule.start_from_environment()  # tracelens reproduce: force an interleaving
    sink = _core.STATE.sink  # kept: whether its writes failed is known after shutdown
    finder = None
    if instrument_code:
        root = instrument.project_root(os.getcwd() if module else target)
        finder = instrument.install([*patterns, *_pyproject_patterns(root)], root=root)
        shadow.defer_private(defer_private)
    status = 0
    interrupted = False
    try:
        try:
            if module:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            elif os.path.isfile(target):
                _run_script(target, rewritten=finder is not None)
            else:  # a directory or a zip file with a __main__.py
                runpy.run_path(target, run_name="__main__")
        finally:
            _join_non_daemon_threads()
    except SystemExit as e:
        status = _exit_status(e)
    except KeyboardInterrupt as e:
        _print_user_traceback(e)
        status, interrupted = 130, True
    except BaseException as e:
        _print_user_traceback(e)
        status = 1
    finally:
        schedule.finish()
        instrument.uninstall()
        _config.shutdown()
        shadow.defer_private(False)
        sys.argv = saved_argv
        if sys.path and saved_path0 is not None and sys.path[0] != saved_path0:
            del sys.path[0]
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL and getattr(
            signal.getsignal(signal.SIGTERM), "__qualname__", ""
        ).startswith("_on_sigterm"):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if sink is None or not sink.failed:  # a failed sink has said so, once
            _say(f"trace written to {path}")
    if interrupted:
        sys.stdout.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return status


USAGE = """usage: tracelens run [-o TRACE] [--stress] [--stack-depth N] [--instrument PATTERN]...
                     [--no-instrument] [--record-private] script.py [args...]
       tracelens run [-o TRACE] [--stress] [--stack-depth N] [--instrument PATTERN]...
                     [--no-instrument] [--record-private] -m module [args...]"""


HELP = f"""{USAGE}

Record a program's run to a trace, like `coverage run`: the program runs as with
`python script.py` (or `python -m module`), with its synchronisation and the shared-state
accesses of its own code recorded. Exits with the program's status.

options:
  -h, --help            show this help and exit
  -o, --output TRACE    the trace file (overwritten; default NAME.trace.jsonl beside
                        the working directory's script name)
  --stress              shrink the thread switch interval to shake out races
  --stack-depth N       frames of each event's call stack to record (default 8;
                        0: the call site only)
  --instrument PATTERN  also record the accesses of modules matching PATTERN
                        (`botocore.*`); repeatable. The script's project is recorded
                        by default, and `[tool.tracelens] instrument` in pyproject.toml
                        adds patterns too
  --no-instrument       record synchronisation and watch() only, no code rewriting
  --record-private      write every access of instrumented code, also those to objects
                        that only one thread or task ever touches (by default they are
                        written only once a second one touches the object)
  -m MODULE             run a module, as `python -m MODULE`
  --                    end of tracelens' options: the script and its arguments follow

Then `tracelens report TRACE` (or `tracelens tui TRACE`) shows what was found."""

#: What ``parse`` returns for ``-h``/``--help``.
HELP_ASKED: Final = "help"


def start_recording(
    path: str | os.PathLike[str],
    *,
    stress: bool = False,
    patterns: Sequence[str] = (),
    root: str | os.PathLike[str],
) -> None:
    """Record as ``tracelens run`` does, in a process that is already running (pytest).

    The recording is pinned (the program's own ``configure()`` calls change nothing) and
    the modules of the project under ``root``, plus ``patterns`` and the project's
    ``[tool.tracelens] instrument``, are rewritten when imported from now on. The finder
    goes after pytest's assertion rewriter, so test modules stay pytest's.
    """
    _config.configure(path, stress=stress)
    _config.pin()
    finder = instrument.install([*patterns, *_pyproject_patterns(Path(root))], root=root)
    hooks = [h for h in sys.meta_path if type(h).__name__ == "AssertionRewritingHook"]
    if hooks:
        sys.meta_path.remove(finder)
        sys.meta_path.insert(sys.meta_path.index(hooks[0]) + 1, finder)


def switch_trace(path: str | os.PathLike[str]) -> bool:
    """Record into ``path`` from now on (``tracelens.record._config.switch_trace``)."""
    return _config.switch_trace(path)


def stop_recording() -> None:
    """End what ``start_recording`` began: stop rewriting modules, flush, unpatch."""
    instrument.uninstall()
    _config.shutdown()


def parse(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]] | str | None:
    """Parse ``run``'s own options; everything from the script (or ``-m module``) on is its.

    Returns ``(argv, options)`` for ``run``, ``HELP_ASKED`` for ``-h``/``--help`` (before
    the script), or ``None`` on a usage error.
    """
    opts: dict[str, Any] = {
        "output": None,
        "module": False,
        "stress": False,
        "instrument_code": True,
        "patterns": [],
    }
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            return HELP_ASKED
        if a in ("-o", "--output") and i + 1 < len(argv):
            opts["output"] = argv[i + 1]
            i += 2
        elif a.startswith("--output="):
            opts["output"] = a.split("=", 1)[1]
            i += 1
        elif a == "--stress":
            opts["stress"] = True
            i += 1
        elif (a == "--stack-depth" and i + 1 < len(argv)) or a.startswith("--stack-depth="):
            text = argv[i + 1] if a == "--stack-depth" else a.split("=", 1)[1]
            if not text.isdigit():
                return None
            opts["stack_depth"] = int(text)
            i += 2 if a == "--stack-depth" else 1
        elif a == "--no-instrument":
            opts["instrument_code"] = False
            i += 1
        elif a == "--record-private":
            opts["defer_private"] = False
            i += 1
        elif a == "--instrument" and i + 1 < len(argv):
            opts["patterns"].append(argv[i + 1])
            i += 2
        elif a.startswith("--instrument="):
            opts["patterns"].append(a.split("=", 1)[1])
            i += 1
        elif a == "-m" and i + 1 < len(argv):
            opts["module"] = True
            return list(argv[i + 1 :]), opts
        elif a == "--":
            return (list(argv[i + 1 :]), opts) if i + 1 < len(argv) else None
        elif a.startswith("-"):
            return None
        else:
            return list(argv[i:]), opts
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``tracelens run ...`` without the rest of the command line (nothing else imported).

    Args:
        argv: The arguments after ``run``; default ``sys.argv[2:]``.
    """
    parsed = parse(sys.argv[2:] if argv is None else argv)
    if parsed == HELP_ASKED:
        print(HELP)
        return 0
    if not isinstance(parsed, tuple):
        print(USAGE, file=sys.stderr)
        print("Try 'tracelens run --help' for help.", file=sys.stderr)
        return EXIT_USAGE
    args, opts = parsed
    return run(args, **opts)
