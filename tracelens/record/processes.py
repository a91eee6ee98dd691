"""``multiprocessing`` children record into the same trace, with their own pid.

The parent records ``fork`` on ``p<pid>`` (kind ``process``) once ``start()`` has
created the child, ``wait`` before a ``join()`` that blocks and ``join`` once the child
has exited. The child records ``begin`` on ``p<its pid>`` before it runs the process
and ``end`` after, and writes its buffers before it exits (multiprocessing children
end with ``os._exit``, which runs no ``atexit`` handler; any process that calls
``os._exit`` while recording writes its buffers first).

Start methods:

* ``fork``: the child inherits the recorder; the core's at-fork hook points it at the
  child's pid (``tracelens.record._config``).
* ``spawn`` and ``forkserver``: the child is a fresh interpreter (or a fork of the
  forkserver). The preparation data the parent sends first carries
  ``STATE.child.early()`` (``_patch_spawn``): unpickling it, before the child runs the
  parent's ``__main__`` again, calls ``configure()`` in the child with the parent's
  settings and rewrites the modules the parent rewrites
  (``tracelens.record.instrument.follow_into_child``), so the locks and accesses of
  that re-run are recorded. The process object carries ``STATE.child`` too, which
  configures the child there when tracelens could not be imported that early. A
  forkserver started while recording runs the same set-up (``_patch_util``), so the
  children it forks inherit it. No environment variable and no ``.pth`` file: only
  children started while the parent records are recorded. The locks made before
  ``begin`` (while the child imports) may be used after ``end`` (its exit handlers).

Only the ``fork``/``join`` edges cross processes; sequence numbers are per process.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing.process as mp_process
import os
from types import ModuleType
from typing import Any, Final

from tracelens import schema as s
from tracelens.record import _core, _hooks
from tracelens.record._core import STATE, next_seq, record
from tracelens.record._patch import Patches

_PROC: Final = {s.KIND: s.Kind.PROCESS}
_P = mp_process.BaseProcess
_PATCHES = Patches()


def _site(p: Any) -> dict[str, Any]:
    target = getattr(p, "_target", None)
    code = getattr(target, "__code__", None) or getattr(type(p).run, "__code__", None)
    if code is None:
        return _PROC
    return {**_PROC, s.FILE: code.co_filename, s.LINE: code.co_firstlineno, s.FUNC: code.co_name}


def _start(self: Any) -> None:
    if STATE.on:
        with contextlib.suppress(Exception):
            self._tl_child = STATE.child
    _PATCHES.original(_P, "start")(self)
    if STATE.on and self._popen is not None:
        record(s.Op.FORK, next_seq(), f"p{self.pid}", extra=_PROC)


def _bootstrap(self: Any, parent_sentinel: Any = None) -> int:
    unit = f"p{os.getpid()}"
    site = _site(self)
    if STATE.on:
        record(s.Op.BEGIN, next_seq(), unit, extra=site, depth=1)
    try:
        return _PATCHES.original(_P, "_bootstrap")(self, parent_sentinel)  # type: ignore[no-any-return]
    finally:
        if STATE.on:
            record(s.Op.END, next_seq(), unit, extra=site, depth=1)
            sink = STATE.sink  # flushed here: the child ends with os._exit, no atexit
            if sink is not None:
                sink.flush()


def _join(self: Any, timeout: float | None = None) -> None:
    popen = self._popen
    if popen is None or not STATE.on or getattr(self, "_tl_joined", False):
        _PATCHES.original(_P, "join")(self, timeout)
        return
    unit = f"p{popen.pid}"
    if popen.returncode is None:
        record(s.Op.WAIT, next_seq(), unit, extra=_PROC)
    _PATCHES.original(_P, "join")(self, timeout)
    if STATE.on and popen.returncode is not None:
        self._tl_joined = True
        record(s.Op.JOIN, next_seq(), unit, extra=_PROC)


def _flush_before(exit: Any) -> Any:
    @functools.wraps(exit)
    def _exit(*args: Any, **kwargs: Any) -> Any:
        # os._exit runs no atexit handler: write what this process buffered first.
        sink = STATE.sink
        if STATE.on and sink is not None:
            with contextlib.suppress(Exception):
                sink.flush()
        return exit(*args, **kwargs)

    return _exit


def _patch_spawn(spawn: ModuleType) -> None:
    """What a spawned (or forkserver) child unpickles first carries ``STATE.child.early()``:
    the child records, and rewrites what this process rewrites, before it runs the parent's
    ``__main__`` again (``prepare()`` ignores keys it does not know)."""
    original = spawn.get_preparation_data

    def get_preparation_data(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        child: Any = STATE.child
        if STATE.on and child is not None:
            with contextlib.suppress(Exception):
                data["tracelens"] = child.early()
        return data

    _PATCHES.set(spawn, "get_preparation_data", get_preparation_data)


def _patch_util(util: ModuleType) -> None:
    """A forkserver started while recording rewrites what this process rewrites
    (``STATE.child.forkserver_args``): the children it forks inherit its modules."""
    original = util.spawnv_passfds

    def spawnv_passfds(path: Any, args: Any, passfds: Any) -> Any:
        child: Any = STATE.child
        if STATE.on and child is not None and isinstance(args, list):
            with contextlib.suppress(Exception):
                args = child.forkserver_args(args)
        return original(path, args, passfds)

    _PATCHES.set(util, "spawnv_passfds", spawnv_passfds)


def install() -> None:
    """Patch ``multiprocessing.process.BaseProcess``, what a spawned child is sent first
    and how a forkserver is started, and ``os._exit`` (idempotent)."""
    if _PATCHES:
        return
    f = mp_process.__file__
    if f:
        _core.SKIP_FILES.add(f)
    _PATCHES.set(_P, "start", _start)
    _PATCHES.set(_P, "join", _join)
    _PATCHES.set(_P, "_bootstrap", _bootstrap)
    _hooks.when_imported("multiprocessing.spawn", _patch_spawn)  # imported when needed
    _hooks.when_imported("multiprocessing.util", _patch_util)
    _PATCHES.set(os, "_exit", _flush_before(os._exit))


def uninstall() -> None:
    """Restore ``BaseProcess``."""
    _PATCHES.restore()
