"""Thread start and join recorded as fork and join.

``Thread.start`` gives the new thread its unit id and records ``fork`` before the
thread can run; the thread records ``begin`` as its first event and ``end`` as its
last (before ``join`` can return); ``join`` is recorded after the thread finished,
with a ``wait`` before it when it had to block.
"""

from __future__ import annotations

import threading
from typing import Any

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import STATE, bind_unit_state, next_seq, record
from tracelens.record._patch import Patches

_THREAD = {s.KIND: s.Kind.THREAD}
_T = threading.Thread
_PATCHES = Patches()


def _start(self: threading.Thread) -> None:
    if STATE.on and getattr(self, "_tl_unit", None) is None:
        n = _core.new_unit_id()
        self._tl_unit = n  # type: ignore[attr-defined]
        record(s.Op.FORK, next_seq(), f"t{n}", extra=_THREAD)
    _PATCHES.original(_T, "start")(self)


def _thread_site(t: threading.Thread) -> dict[str, Any]:
    """The thread's code (its target, or its run method) as the site of begin/end."""
    target = getattr(t, "_target", None)
    code = getattr(target, "__code__", None) or getattr(type(t).run, "__code__", None)
    if code is None:
        return _THREAD
    return {**_THREAD, s.FILE: code.co_filename, s.LINE: code.co_firstlineno, s.FUNC: code.co_name}


def _bootstrap_inner(self: threading.Thread) -> None:
    n = getattr(self, "_tl_unit", None)
    st = None
    if n is not None and STATE.on:
        st = bind_unit_state(f"t{n}", n, self.name)
        site = _thread_site(self)
        record(s.Op.BEGIN, next_seq(), f"t{n}", extra=site, depth=1)
    try:
        _PATCHES.original(_T, "_bootstrap_inner")(self)
    finally:
        if st is not None:
            if STATE.on:
                record(s.Op.END, next_seq(), f"t{n}", extra=site, depth=1)
            st.dead = True


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    n = getattr(self, "_tl_unit", None)
    if n is None or not STATE.on:
        _PATCHES.original(_T, "join")(self, timeout)
        return
    if self.is_alive():
        record(s.Op.WAIT, next_seq(), f"t{n}", extra=_THREAD)
    _PATCHES.original(_T, "join")(self, timeout)
    if not self.is_alive() and STATE.on:
        record(s.Op.JOIN, next_seq(), f"t{n}", extra=_THREAD)


def install() -> None:
    """Patch ``threading.Thread`` (idempotent)."""
    if _PATCHES:
        return
    _PATCHES.set(_T, "start", _start)
    _PATCHES.set(_T, "join", _join)
    _PATCHES.set(_T, "_bootstrap_inner", _bootstrap_inner)


def uninstall() -> None:
    """Restore ``threading.Thread``."""
    _PATCHES.restore()
