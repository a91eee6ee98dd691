"""A controlled scheduler inside the recorded program: force one interleaving.

Every recorded event (an instrumented access, a ``watch()`` proxy's, a lock acquire or
release, a thread's start and join, a queue's put and get, an asyncio task's) is a
scheduling point: ``tracelens.record._core.py_record`` calls ``Scheduler.point`` right
after the event is buffered, in the unit that did it. A ``Plan`` says where to hold a
unit back and what releases it:

* ``Hold(at, until)``: the first unit whose event matches ``at`` (after ``skip``
  matching events were let pass) stops right after that event, until another unit
  does an event matching ``until``; then it goes on. "A after its read of V at S
  waits until B has written V" is ``Hold(Point("read", "V", "app.py:7"),
  Point("write", "V"))``.
* ``serial=True``: one unit runs at a time (a baton), handed on when the holder ends,
  blocks on something recorded (``acquire_try``, ``wait``) or records nothing for
  ``STALL`` seconds: the reference run whose result the forced one is compared with.

A thread is held by waiting in the hook; an asyncio task by not running its next
step: the loop's ``call_soon`` is wrapped so that the steps of a held task are kept
back until the hold ends (the rest of the loop runs on).

Waits are bounded. A hold ends without being forced when the unit it waits for asks
for a lock the held unit holds ("ordered by the lock"), when nothing happens for
``STALL`` seconds or after ``Plan.wait`` seconds; a held task that reaches its next
access of the variable without yielding cannot be interleaved there. A cycle of units
each waiting for a lock another holds is a deadlock: the stacks of its units are
written to the result and the process ends (``DEADLOCK_STATUS``), as it does when the
whole run takes longer than ``Plan.timeout``.

``tracelens reproduce`` passes the plan to the child in ``ENV`` (JSON) and reads what
happened from ``Plan.result``. ``run_in_process`` runs a function of the program in
this process instead, on the pure-Python recorder switched in for the run; there a
deadlock or the time limit stops the scheduling rather than the process. Standard
library only; nothing here is recorded.
"""

from __future__ import annotations

import _thread
import contextlib
import fnmatch
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from tracelens import schema as s
from tracelens.record import _core

__all__ = [
    "DEADLOCK_STATUS",
    "ENV",
    "Call",
    "Hold",
    "Plan",
    "Point",
    "Run",
    "Scheduler",
    "active",
    "finish",
    "run_in_process",
    "run_scheduled",
    "start",
    "start_from_environment",
]

#: The environment variable that carries a plan (JSON) to a child process.
ENV: Final = _core.SCHEDULE_ENV
#: The exit status of a run the scheduler ended (a deadlock, or over its time).
DEADLOCK_STATUS: Final = 3
#: Seconds without any recorded event after which a waiting hold or the serial baton
#: gives up on the units it waits for.
STALL: Final = 0.5
#: Seconds without any recorded event after which a serial run hands the baton on
#: (its holder is blocked on something the recorder does not see).
SERIAL_STALL: Final = 0.1
#: ``SERIAL_STALL`` when the holder's latest event was a read (``_serial_stall``).
READ_STALL: Final = 2.0
_POLL: Final = 0.0005
#: Events after which a serial run's unit does not wait for the baton: it is about to
#: block, or ends (``begin``: the thread that started it waits for it to have begun).
_NO_BATON: Final = frozenset({s.Op.BEGIN, s.Op.END, s.Op.ACQUIRE_TRY, s.Op.WAIT})
#: Events that hand a serial run's baton on: the unit is about to block, or ends.
_PASSES: Final = frozenset({s.Op.END, s.Op.ACQUIRE_TRY, s.Op.WAIT})
_TICK: Final = 0.02


@dataclass(frozen=True)
class Point:
    """A set of events: each given field must match (``None`` matches anything).

    Attributes:
        op: The operation (``read``, ``write``, ``acquire``...).
        target: The variable, or the lock or object name.
        site: ``file:line``; the file matches by its end (``app.py:7``).
        unit: The thread or task name, a glob (``worker-*``).
        func: With ``site``: an event in this function of the site's file matches
            too, at any line (the code was edited since the trace was recorded).
    """

    op: str | None = None
    target: str | None = None
    site: str | None = None
    unit: str | None = None
    func: str | None = None

    def matches(
        self, op: str, target: str, file: str, line: int, name: str, func: str = ""
    ) -> bool:
        if self.op is not None and op != self.op:
            return False
        if self.target is not None and target != self.target:
            return False
        if self.unit is not None and not fnmatch.fnmatchcase(name, self.unit):
            return False
        if self.site is not None:
            want_file, _, want_line = self.site.rpartition(":")
            if not _same_file(file, want_file):
                return False
            if str(line) != want_line and (self.func is None or func != self.func):
                return False
        return True

    def text(self) -> str:
        what = " ".join(p for p in (self.op, self.target) if p) or "any event"
        where = f" at {self.site}" if self.site else ""
        return what + where + (f" (or in {self.func})" if self.func and self.site else "")


def _same_file(file: str, want: str) -> bool:
    """Whether two paths name one file: equal, or one the other's end, or (traces
    recorded in another checkout) the same last two components."""
    file, want = file.replace("\\", "/"), want.replace("\\", "/")
    if file == want or file.endswith("/" + want.lstrip("/")) or want.endswith("/" + file):
        return True
    return file.split("/")[-2:] == want.split("/")[-2:] and want.count("/") >= 1


@dataclass(frozen=True)
class Hold:
    """Hold the first unit that reaches ``at`` until another unit reaches ``until``."""

    at: Point
    until: Point
    skip: int = 0


@dataclass(frozen=True)
class Plan:
    """What to force. ``timeout``: the whole run; ``wait``: one hold's longest wait."""

    holds: tuple[Hold, ...] = ()
    serial: bool = False
    timeout: float = 20.0
    wait: float = 3.0
    result: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        d = json.loads(text)
        holds = tuple(
            Hold(Point(**h["at"]), Point(**h["until"]), int(h.get("skip", 0)))
            for h in d.get("holds", ())
        )
        return cls(
            holds=holds,
            serial=bool(d.get("serial", False)),
            timeout=float(d.get("timeout", 20.0)),
            wait=float(d.get("wait", 3.0)),
            result=d.get("result"),
        )


@dataclass
class _HoldState:
    hold: Hold
    status: str = "armed"  # armed, holding, forced, not_forced
    seen: int = 0
    unit: str = ""
    unit_name: str = ""
    at_site: str = ""
    by: str = ""
    why: str = ""
    since: float = 0.0


@dataclass
class _Unit:
    key: str
    name: str
    tid: int
    task: Any = None
    last_site: str = ""
    last_op: str = ""


@dataclass
class _Gate:
    """The wrapped ``call_soon`` of one event loop and the steps it keeps back."""

    loop: Any
    original: Callable[..., Any]
    kept: list[tuple[Any, Any, tuple[Any, ...], Any]] = field(default_factory=list)


class Scheduler:
    """The plan's state while it runs (one per process, ``active()``)."""

    def __init__(self, plan: Plan, *, in_process: bool = False) -> None:
        self.plan = plan
        #: Run inside the caller's process (``run_in_process``): a deadlock or the time
        #: limit stops the scheduling instead of ending the process.
        self.in_process = in_process
        self.holds = [_HoldState(h) for h in plan.holds]
        self.lock = _core.original_allocate_lock()
        self.units: dict[str, _Unit] = {}
        self.holders: dict[str, list[Any]] = {}  # lock -> [unit key, count, site]
        self.waiting: dict[str, tuple[str, str]] = {}  # unit key -> (lock, site)
        #: unit key -> (object, site): blocked on a hand-off (a join, an event, a queue)
        self.waiting_on: dict[str, tuple[str, str]] = {}
        self.last_event = time.monotonic()
        self.started = self.last_event
        self.baton: str | None = None
        self.baton_queue: list[str] = []
        self.gates: dict[int, _Gate] = {}
        self.ended: dict[str, Any] | None = None
        self.events = 0

    # -- the hook ---------------------------------------------------------------------
    def point(self, rec: tuple[Any, ...], st: Any, frame: Any) -> None:
        """One recorded event: update what is known, then hold the unit if the plan says."""
        op, target, task = rec[0], rec[3], rec[7]
        if type(target) is not str:
            return
        code = frame.f_code
        file, line, func = code.co_filename, frame.f_lineno, code.co_name
        extra = rec[8]
        if type(extra) is dict and s.FILE in extra:  # begin and end: the unit's code
            file, line, func = extra[s.FILE], extra.get(s.LINE, 0), extra.get(s.FUNC, func)
        in_task = task is not None
        key, name = (task[0], task[1]) if in_task else (st.unit, st.name)
        wait_for: _HoldState | None = None
        internal = type(extra) is dict and extra.get(s.INTERNAL) is True
        with self.lock:
            self.events += 1
            self.last_event = time.monotonic()
            u = self.units.get(key)
            if u is None:
                u = self.units[key] = _Unit(key, name, _thread.get_ident())
                if in_task:
                    import asyncio

                    u.task = asyncio.current_task()
            u.last_site = f"{file}:{line}"
            u.last_op = op
            self._locks(key, op, target, u.last_site, internal)
            for h in self.holds:
                if h.status == "holding":
                    self._release_check(h, key, name, op, target, file, line, func)
            for h in self.holds:
                if h.status == "armed" and h.hold.at.matches(op, target, file, line, name, func):
                    if h.seen < h.hold.skip:
                        h.seen += 1
                        continue
                    h.seen += 1
                    h.status, h.unit, h.unit_name = "holding", key, name
                    h.at_site, h.since = u.last_site, self.last_event
                    wait_for = h
                    break
            passed = False
            if self.plan.serial and not internal:
                if in_task:
                    passed = op in _PASSES and self.baton == key
                    if passed:
                        self.baton = None
                else:
                    self._serial_note(key, op)
        if in_task:
            if wait_for is not None or self.plan.serial:
                self._gate_loop()
            if passed:
                self._flush_all()
            return
        if wait_for is not None:
            if op == s.Op.BEGIN:
                self._held_at_start(wait_for, extra)
            else:
                self._wait_held(wait_for)
        if self.plan.serial and not internal:
            if op == s.Op.BEGIN:
                self._baton_at_start(key, extra)
            elif op not in _NO_BATON:
                self._wait_baton(key)

    def _locks(self, key: str, op: str, target: str, site: str, internal: bool) -> None:
        if op == s.Op.WAIT:
            self.waiting_on[key] = (target, site)
        elif not internal:
            self.waiting_on.pop(key, None)
        if op == s.Op.ACQUIRE:
            self.waiting.pop(key, None)
            held = self.holders.get(target)
            if held is not None and held[0] == key:
                held[1] += 1
            else:
                self.holders[target] = [key, 1, site]
        elif op == s.Op.RELEASE:
            held = self.holders.get(target)
            if held is not None and held[0] == key:
                held[1] -= 1
                if held[1] <= 0:
                    del self.holders[target]
        elif op == s.Op.ACQUIRE_TRY:
            self.waiting[key] = (target, site)
        elif op == s.Op.ACQUIRE_FAIL:
            self.waiting.pop(key, None)

    def _release_check(
        self,
        h: _HoldState,
        key: str,
        name: str,
        op: str,
        target: str,
        file: str,
        line: int,
        func: str,
    ) -> None:
        if key == h.unit:
            at = h.hold.at
            if (
                self.units[key].task is not None
                and op in (s.Op.READ, s.Op.WRITE)
                and (at.target is None or target == at.target)
            ):
                self._end_hold(
                    h,
                    "not_forced",
                    f"{h.unit_name} reached its next access of {target} at {file}:{line} "
                    "without yielding to the event loop (no await in between), so no other "
                    "task can run there",
                )
            return
        if h.hold.until.matches(op, target, file, line, name, func):
            h.by = name
            self._end_hold(h, "forced", f"{name} did {op} {target} at {file}:{line}")
            return
        if op == s.Op.ACQUIRE_TRY:
            held = self.holders.get(target)
            if held is not None and held[0] == h.unit:
                self._end_hold(
                    h,
                    "not_forced",
                    f"the accesses are ordered by the lock {target}: {h.unit_name} holds it "
                    f"(taken at {held[2]}) and {name} waits for it at {file}:{line}",
                    lock=target,
                )

    def _end_hold(self, h: _HoldState, status: str, why: str, lock: str = "") -> None:
        h.status, h.why = status, why
        if lock:
            h.by = lock
        u = self.units.get(h.unit)
        if u is not None and u.task is not None:
            for gate in list(self.gates.values()):
                with contextlib.suppress(RuntimeError):
                    gate.loop.call_soon_threadsafe(self._flush_gate, gate)

    def _held(self, key: str) -> bool:
        return any(h.status == "holding" and h.unit == key for h in self.holds)

    def _wait_held(self, h: _HoldState) -> None:
        deadline = h.since + self.plan.wait
        while True:
            with self.lock:
                if h.status != "holding":
                    return
                now = time.monotonic()
                if now > deadline or now - self.last_event > STALL:
                    self._end_hold(h, "not_forced", self._why_not_reached(h, now > deadline))
                    return
            time.sleep(_POLL)

    def _why_not_reached(self, h: _HoldState, over: bool) -> str:
        waits = [
            f"{self.units[k].name} waits for {lock} at {site}"
            + (
                f" (held by {self.units[self.holders[lock][0]].name})"
                if lock in self.holders and self.holders[lock][0] in self.units
                else ""
            )
            for k, (lock, site) in self.waiting.items()
            if k in self.units
        ]
        waits += [
            f"{self.units[k].name} waits for {obj} at {site}"
            for k, (obj, site) in self.waiting_on.items()
            if k in self.units and k != h.unit
        ]
        when = f"within {self.plan.wait:g} s" if over else f"(nothing happened for {STALL:g} s)"
        text = f"no other unit did {h.hold.until.text()} while {h.unit_name} was held {when}"
        return text + ("; " + "; ".join(waits) if waits else "")

    # -- serial runs --------------------------------------------------------------------
    def _serial_note(self, key: str, op: str) -> None:
        if op in _PASSES:
            if self.baton == key:
                self._pass_baton()
            return
        if self.baton is None and not self.baton_queue:
            self.baton = key
        elif self.baton != key and key not in self.baton_queue:
            self.baton_queue.append(key)

    def _baton_at_start(self, key: str, extra: Any) -> None:
        """A new thread waits for the baton when its code starts, not at ``begin``: the
        thread that started it waits until it has begun, and the hook runs after each
        access, so waiting at the first access would be too late."""
        _at_code_start(extra, lambda: self._wait_baton(key))

    def _held_at_start(self, h: _HoldState, extra: Any) -> None:
        """A thread held at its ``begin`` waits when its code starts (``_baton_at_start``
        says why); one whose code is unknown waits at once."""
        if not _at_code_start(extra, lambda: self._wait_held(h)):
            self._wait_held(h)

    def _pass_baton(self) -> None:
        self.baton = self.baton_queue.pop(0) if self.baton_queue else None

    def _wait_baton(self, key: str) -> None:
        while True:
            with self.lock:
                if self.ended is not None:
                    return
                if self.baton is None:
                    self.baton = key
                if self.baton == key:
                    with contextlib.suppress(ValueError):
                        self.baton_queue.remove(key)
                    return
                if key not in self.baton_queue:
                    self.baton_queue.append(key)
            time.sleep(_POLL)

    # -- asyncio ------------------------------------------------------------------------
    def _gate_loop(self) -> None:
        """Wrap the running loop's ``call_soon`` (once per loop)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if id(loop) in self.gates:
            return
        gate = _Gate(loop, loop.call_soon)
        self.gates[id(loop)] = gate

        def call_soon(callback: Any, *args: Any, context: Any = None) -> Any:
            task = getattr(callback, "__self__", None)
            if isinstance(task, asyncio.Future) and hasattr(task, "get_coro"):
                return gate.original(
                    self._step, gate, task, callback, args, context, context=context
                )
            return gate.original(callback, *args, context=context)

        loop.call_soon = call_soon  # type: ignore[method-assign,assignment]

    def _task_blocked(self, task: Any) -> bool:
        if self.ended is not None:
            return False
        key = _core.task_unit(task)[0]
        if self._held(key):
            return True
        if self.plan.serial:
            if self.baton is None:
                self.baton = key
            return self.baton != key
        return False

    def _step(self, gate: _Gate, task: Any, callback: Any, args: tuple[Any, ...], ctx: Any) -> None:
        with self.lock:
            blocked = self._task_blocked(task)
            if blocked:
                gate.kept.append((task, callback, args, ctx))
        if blocked:
            return
        try:
            callback(*args)
        finally:
            if self.plan.serial and (task.done() or _waits_for_tasks(task)):
                with self.lock:
                    if self.baton == _core.task_unit(task)[0]:
                        self.baton = None
                self._flush_gate(gate)

    def _flush_all_threadsafe(self) -> None:
        for gate in list(self.gates.values()):
            with contextlib.suppress(RuntimeError):
                gate.loop.call_soon_threadsafe(self._flush_gate, gate)

    def _flush_all(self) -> None:
        for gate in list(self.gates.values()):
            self._flush_gate(gate)

    def _flush_gate(self, gate: _Gate) -> None:
        kept, gate.kept = gate.kept, []
        for task, callback, args, ctx in kept:
            gate.original(self._step, gate, task, callback, args, ctx, context=ctx)

    # -- the watchdog -------------------------------------------------------------------
    def watch(self) -> None:
        """Every few ms: deadlocks, the time limit, stalled holds and batons (a thread)."""
        cycle_since: tuple[frozenset[str], int, float] | None = None
        while self.ended is None:
            time.sleep(_TICK)
            now = time.monotonic()
            with self.lock:
                cycle = self._cycle()
                events = self.events
                stalled = now - self.last_event > STALL
                for h in self.holds:
                    u = self.units.get(h.unit)
                    if (
                        h.status == "holding"
                        and u is not None
                        and u.task is not None
                        and (now - h.since > self.plan.wait or stalled)
                    ):
                        self._end_hold(h, "not_forced", self._why_not_reached(h, not stalled))
                if self.plan.serial and now - self.last_event > self._serial_stall():
                    self._pass_baton()
                    self.last_event = now
                    for gate in self.gates.values():
                        with contextlib.suppress(RuntimeError):
                            gate.loop.call_soon_threadsafe(self._unstall_tasks, gate)
            if cycle:
                if cycle_since is None or cycle_since[0] != cycle or cycle_since[1] != events:
                    cycle_since = (cycle, events, now)
                elif now - cycle_since[2] > 0.2:
                    self._stop("deadlock", sorted(cycle))
                    return
            else:
                cycle_since = None
            if now - self.started > self.plan.timeout:
                self._stop("timeout", sorted(self.units))
                return

    def _serial_stall(self) -> float:
        """How long the baton's holder may record nothing before the baton is handed on:
        longer after a read (it is slow, not blocked, in the middle of an update: a
        hand-on there would make the serial run lose that update)."""
        holder = self.units.get(self.baton) if self.baton is not None else None
        return READ_STALL if holder is not None and holder.last_op == s.Op.READ else SERIAL_STALL

    def _unstall_tasks(self, gate: _Gate) -> None:
        with self.lock:
            self.baton = None
        self._flush_gate(gate)

    def _cycle(self) -> frozenset[str]:
        """The units of a cycle of lock waits, or an empty set."""
        for start in self.waiting:
            seen: list[str] = []
            key: str | None = start
            while key is not None and key not in seen:
                seen.append(key)
                lock = self.waiting.get(key)
                holder = self.holders.get(lock[0]) if lock is not None else None
                key = holder[0] if holder is not None else None
            if key is not None:
                return frozenset(seen[seen.index(key) :])
        return frozenset()

    def _stop(self, why: str, keys: list[str]) -> None:
        """End the run: the units' stacks into the result, the trace flushed, exit."""
        frames = sys._current_frames()
        units = []
        with self.lock:
            for key in keys:
                u = self.units.get(key)
                if u is None:
                    continue
                frame = _task_frame(u.task) if u.task is not None else frames.get(u.tid)
                stack = _stack_text(frame)
                lock, site = self.waiting.get(key, ("", ""))
                holds = [f"{k} (taken at {v[2]})" for k, v in self.holders.items() if v[0] == key]
                units.append(
                    {"unit": u.name, "waits_for": lock, "at": site, "holds": holds, "stack": stack}
                )
        self.ended = {"how": why, "units": units}
        if self.in_process:
            # The caller's process goes on: let every unit run free from now on.
            _core.schedule_point = None
            with self.lock:
                for h in self.holds:
                    if h.status == "holding":
                        self._end_hold(h, "not_forced", f"the run was stopped ({why})")
            self._flush_all_threadsafe()
            return
        self.write_result()
        with contextlib.suppress(Exception):
            from tracelens.record import _config

            _config.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(DEADLOCK_STATUS)

    # -- the result ---------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        holds = []
        for h in self.holds:
            status, why = h.status, h.why
            if status == "armed":
                status = "not_reached"
                why = (
                    f"{h.hold.at.text()} was reached {h.seen} time(s), fewer than needed"
                    if h.seen
                    else f"no unit reached {h.hold.at.text()}"
                )
            elif status == "holding":
                status, why = "not_forced", "the run ended while the unit was held"
            holds.append({"status": status, "why": why, "unit": h.unit_name, "at": h.at_site})
        return {"holds": holds, "ended": self.ended, "events": self.events}

    def write_result(self) -> None:
        path = self.plan.result
        if path:
            with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as f:
                json.dump(self.result(), f)


def _at_code_start(extra: Any, then: Callable[[], None]) -> bool:
    """Call ``then`` in this thread when the code ``begin``'s extra names is called
    (a one-shot profile function); ``False`` when the extra names no code."""
    code_file = extra.get(s.FILE) if type(extra) is dict else None
    code_line = extra.get(s.LINE) if type(extra) is dict else None
    if code_file is None:
        return False

    def on_call(frame: Any, event: str, _arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename == code_file and code.co_firstlineno == code_line:
            sys.setprofile(None)
            then()

    sys.setprofile(on_call)
    return True


def _waits_for_tasks(task: Any) -> bool:
    """Whether a task waits for other tasks (``await other``, ``gather``): a serial run
    hands the baton on."""
    import asyncio

    waiter = getattr(task, "_fut_waiter", None)
    return isinstance(waiter, asyncio.Task) or type(waiter).__name__ == "_GatheringFuture"


_OWN_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _stack_text(frame: Any) -> str:
    """A unit's stack as a traceback prints it, without tracelens' own frames."""
    if frame is None:
        return ""
    frames = [f for f in traceback.extract_stack(frame) if not f.filename.startswith(_OWN_DIR)]
    return "".join(traceback.format_list(frames))


def _task_frame(task: Any) -> Any:
    stack = task.get_stack()
    return stack[-1] if stack else None


_ACTIVE: list[Scheduler] = []


def active() -> Scheduler | None:
    """The scheduler of this process, when a plan runs."""
    return _ACTIVE[0] if _ACTIVE else None


def start(plan: Plan, *, in_process: bool = False) -> Scheduler:
    """Run ``plan`` from now on: every recorded event becomes a scheduling point.

    Needs the pure-Python recorder (``_core.record is _core.py_record``): a process
    started with ``ENV`` set uses it (``run_in_process`` switches to it).
    """
    sched = Scheduler(plan, in_process=in_process)
    _ACTIVE[:] = [sched]
    _core.schedule_point = sched.point
    _thread.start_new_thread(sched.watch, ())
    return sched


def start_from_environment() -> Scheduler | None:
    """Start the plan in ``ENV``, if there is one (``tracelens run`` calls this)."""
    text = os.environ.get(ENV)
    if not text:
        return None
    try:
        plan = Plan.from_json(text)
    except (ValueError, TypeError, KeyError) as e:
        _core.say_once(f"cannot read the schedule in {ENV}: {e}")
        return None
    if _core.record is not _core.py_record:
        _core.say_once("the schedule needs the pure-Python recorder; it is not applied")
        return None
    return start(plan)


def finish() -> None:
    """Stop scheduling and write the result (the run ended by itself)."""
    sched = active()
    if sched is None:
        return
    _core.schedule_point = None
    with sched.lock:
        for h in sched.holds:
            if h.status == "holding":
                sched._end_hold(h, "not_forced", "the run ended while the unit was held")
        if sched.ended is None:
            sched.ended = {"how": "finished", "units": []}
    sched.write_result()
    _ACTIVE.clear()


@dataclass(frozen=True)
class Run:
    """One run of a program under a plan (``run_scheduled``).

    Attributes:
        status: The program's exit status (``DEADLOCK_STATUS`` when the scheduler ended it).
        stdout: What it printed.
        stderr: What it printed on stderr.
        result: The scheduler's account: ``holds`` (each with ``status``: ``forced``,
            ``not_forced`` or ``not_reached``, and ``why``) and ``ended`` (``how``:
            ``finished``, ``deadlock`` or ``timeout``, and the stuck ``units`` with their
            stacks).
        trace: The run's trace file.
    """

    status: int
    stdout: str
    stderr: str
    result: dict[str, Any]
    trace: Path

    @property
    def how(self) -> str:
        """How the run ended: ``finished``, ``deadlock``, ``timeout`` or ``no result``."""
        ended = self.result.get("ended") or {}
        return str(ended.get("how", "no result"))

    @property
    def deadlocked(self) -> bool:
        return self.how == "deadlock"

    @property
    def forced(self) -> bool:
        """Whether every hold of the plan happened as planned."""
        holds = self.result.get("holds", [])
        return bool(holds) and all(h.get("status") == "forced" for h in holds)


@dataclass(frozen=True)
class Call:
    """A function of the program's code to run under a plan, instead of a command.

    ``run_scheduled`` starts a child that imports ``module`` (from ``path``, first on its
    ``sys.path``) and calls ``func`` (a module-level function's qualified name) with
    ``args`` (JSON values), as ``tracelens run`` runs a script (instrumenting the
    program's code as it imports it), so the function's threads and tasks are recorded
    and scheduled; ``run_in_process`` calls it in this process instead.

    Attributes:
        module: The module's import name (``app``, ``pkg.jobs``).
        func: The function's name in it.
        args: Its positional arguments (str, int, float, bool, None, lists of them).
        path: The directory to import ``module`` from ("": the child's ``sys.path``).
    """

    module: str
    func: str
    args: tuple[Any, ...] = ()
    path: str = ""

    @classmethod
    def of(cls, fn: Callable[..., Any], *args: Any) -> Call:
        """The call of an imported module-level function: ``Call.of(app.main, "t.jsonl")``.

        Raises:
            ValueError: ``fn`` is not importable by name (a nested function, a lambda,
                or defined in ``__main__``).
        """
        module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        if not module or module == "__main__" or not name or "<" in name:
            raise ValueError(f"{fn!r} cannot be imported by name: give a module-level function")
        file = getattr(sys.modules.get(module), "__file__", None)
        path = ""
        if file:
            root = Path(file).resolve().parent
            for _ in range(module.count(".")):
                root = root.parent
            path = str(root)
        return cls(module, name, tuple(args), path)

    def command(self) -> list[str]:
        """``tracelens run``'s arguments for this call (``run_scheduled`` takes them)."""
        args = json.dumps(list(self.args))
        return ["-m", "tracelens.record.call", self.path, self.module, self.func, args]


def tracelens_run_args(command: Sequence[str] | Call) -> list[str]:
    """``tracelens run``'s arguments for a command: ``script.py args``, ``-m module args``,
    or either after ``python`` (which is dropped: the child runs this interpreter); or a
    ``Call``'s."""
    if isinstance(command, Call):
        return command.command()
    cmd = list(command)
    if cmd and Path(cmd[0]).name.startswith("python") and not cmd[0].endswith(".py"):
        cmd = cmd[1:]
    if cmd and cmd[0] == "-m":
        return cmd
    return ["--", *cmd]


def run_scheduled(
    command: Sequence[str] | Call,
    plan: Plan,
    *,
    trace: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run ``command`` as ``tracelens run`` does, in a child process, under ``plan``.

    Args:
        command: ``["app.py", "arg"]``, ``["-m", "pkg.mod"]``, or either after ``python``;
            or a ``Call`` of the program's function.
        plan: What to force; its ``timeout`` bounds the run (the child is killed a
            little after it, if the scheduler could not end it itself).
        trace: Where the child's trace goes (default: a temporary file).
        cwd: The child's working directory.
        env: Its environment (default: this process's).
    """
    tmp = Path(tempfile.mkdtemp(prefix="tracelens-schedule-"))
    result_path = tmp / "result.json"
    trace_path = Path(trace) if trace is not None else tmp / "trace.jsonl"
    child_env = dict(os.environ if env is None else env)
    child_env[ENV] = replace(plan, result=str(result_path)).to_json()
    child_env.pop("TRACELENS_PURE_PYTHON", None)
    argv = [sys.executable, "-m", "tracelens", "run", "-o", str(trace_path)]
    argv += tracelens_run_args(command)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=child_env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=plan.timeout + 5.0,
            check=False,
        )
        status, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        status = DEADLOCK_STATUS
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {
            "holds": [],
            "ended": {"how": "timeout" if status == DEADLOCK_STATUS else "no result", "units": []},
        }
    with contextlib.suppress(OSError):
        result_path.unlink()
    if trace is not None:
        with contextlib.suppress(OSError):
            tmp.rmdir()
    return Run(status, out, err, result, trace_path)


def run_in_process(
    call: Call,
    plan: Plan,
    *,
    trace: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Run:
    """Run ``call`` in this process, recorded, under ``plan``; what it printed is captured.

    This process must not be recording already. It records with the pure-Python
    recorder for the run (``_core.use_pure_python``), and the C one again after. The
    function runs in a thread of its own: when it deadlocks or outlives ``plan.timeout``
    the scheduling stops and the run is over (``DEADLOCK_STATUS``), but its blocked
    threads cannot be ended here and stay blocked (forcing a lock-order inversion in a
    process of its own, ``run_scheduled``, ends them). Instrumented code records past
    the scheduler: only ``watch()`` proxies, recorded locks, queues, events and tasks are
    scheduling points here.

    Args:
        call: The function (``Call.of(fn, *args)``), imported here if need be.
        plan: What to force.
        trace: Where the trace goes (default: a temporary file).
        cwd: The working directory during the run (restored after).
    """
    from tracelens.record import _config
    from tracelens.record.call import resolve

    if _core.STATE.on:
        raise RuntimeError("run_in_process needs a process that is not recording already")
    trace_path = (
        Path(trace)
        if trace is not None
        else Path(tempfile.mkdtemp(prefix="tracelens-schedule-")) / "trace.jsonl"
    )
    fn = resolve(call.module, call.func, call.path)
    out, err = io.StringIO(), io.StringIO()
    go, ended = _core.original_allocate_lock(), _core.original_allocate_lock()
    go.acquire()
    ended.acquire()
    status = [0]
    running = [False]

    def body() -> None:
        go.acquire()
        if not running[0]:
            return  # the recording could not start
        try:
            fn(*call.args)
        except SystemExit as e:
            status[0] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            status[0] = 1
            traceback.print_exc(file=err)
        finally:
            ended.release()

    # Started before recording begins, and named as a program's main thread is: the
    # function runs as a script's code does (no recorded fork; plans name it MainThread).
    runner = threading.Thread(target=body, name="MainThread", daemon=True)
    runner.start()
    undo = _core.use_pure_python()
    old_cwd = os.getcwd()
    result: dict[str, Any] = {}
    try:
        if cwd is not None:
            os.chdir(cwd)
        _config.configure(trace_path)
        _config.pin()  # the function's own configure() must not send the trace elsewhere
        sched = start(replace(plan, result=None), in_process=True)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            running[0] = True
            go.release()
            deadline = time.monotonic() + plan.timeout + 1.0
            while not ended.acquire(timeout=_TICK):
                if sched.ended is None and time.monotonic() > deadline:
                    sched._stop("timeout", sorted(sched.units))
                if sched.ended is not None:  # a deadlock, or over its time: it is over
                    status[0] = DEADLOCK_STATUS
                    break
        finish()
        result = sched.result()
    finally:
        if not running[0]:
            go.release()
        _core.schedule_point = None
        _ACTIVE.clear()
        _config.shutdown()
        undo()
        os.chdir(old_cwd)
    return Run(status[0], out.getvalue(), err.getvalue(), result, trace_path)
