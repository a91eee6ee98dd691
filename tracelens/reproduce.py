"""``tracelens reproduce``: force a finding's interleaving and say what it did.

From a finding of a trace, ``plans`` builds what the scheduler
(``tracelens.record.schedule``) is to force, by kind:

* a lost update, an atomicity violation, or a data race on a read-modify-write: the
  unit of the first local access is held right after it until another unit did the
  remote access (A reads, B writes, A writes);
* any other data race (and an inconsistent locking): the two accesses in the order
  opposite to the recorded one: the unit of the earlier access is held right after
  the event it recorded before that access, until the other unit did its access;
* a lock-order inversion (or a deadlock): the unit that took the first lock is held
  with it until the other unit took its own first lock: then each asks for the lock
  the other holds.

Each plan is tried in up to ``attempts`` runs, the recorded occurrence of its point
first (a site in a loop is reached many times), then the first, second... ``force``
runs the program serially (one unit at a time) for the result to compare with, then
under each plan, and says whether the bug happened (``verdict``): a deadlock or hang,
a different exit status, a different output (and by how much), or a lost update in
the new trace. A hold that could not be forced is never a reproduction.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

from tracelens import schema as s
from tracelens.exceptions import UsageError
from tracelens.record.schedule import (
    Call,
    Hold,
    Plan,
    Point,
    Run,
    run_in_process,
    run_scheduled,
)

if TYPE_CHECKING:
    import polars as pl

    from tracelens.analyze import Finding

__all__ = [
    "FORCED_KINDS",
    "Outcome",
    "emit_test",
    "force",
    "importable_call",
    "plans",
    "reproduce",
    "select",
    "verdict",
]

#: The kinds whose interleaving ``plans`` knows how to force.
FORCED_KINDS: Final = (
    "lost_update",
    "atomicity_violation",
    "data_race",
    "inconsistent_locking",
    "lock_order_inversion",
    "deadlock",
)
_LOCK_KINDS: Final = ("lock_order_inversion", "deadlock")
_UNIT_OPS: Final = (s.Op.FORK, s.Op.BEGIN, s.Op.END, s.Op.JOIN)


@dataclass(frozen=True)
class Outcome:
    """What forcing a plan did.

    Attributes:
        reproduced: Whether the bug happened.
        summary: One line: how it showed, or why it could not be forced.
        details: Further lines (the stuck units' stacks, the values compared).
        plan: The plan of the last run.
        run: The last forced run (``None`` when none ran).
        attempts: How many forced runs were made.
    """

    reproduced: bool
    summary: str
    details: tuple[str, ...] = ()
    plan: Plan | None = None
    run: Run | None = None
    attempts: int = 0


# --- choosing the finding -----------------------------------------------------------


def select(findings: Sequence[Finding], wanted: str) -> tuple[int, Finding]:
    """The finding ``wanted`` names: its 1-based index in the report, its fingerprint
    (or stable fingerprint), or its group id, whole or a unique prefix of 6 or more.

    Raises:
        UsageError: No finding, or several, match.
    """
    if not findings:
        raise UsageError("the trace has no findings to reproduce")
    w = wanted.strip().lower()
    if w.isdigit() and len(w) < 6:
        i = int(w)
        if not 1 <= i <= len(findings):
            raise UsageError(
                f"no finding {i}: the report has {len(findings)} (1 to {len(findings)})"
            )
        return i, findings[i - 1]
    from tracelens.report.baseline import stable_fingerprint

    root = Path.cwd()
    hits = []
    for i, f in enumerate(findings, 1):
        ids = (f.fingerprint, f.group, stable_fingerprint(f, root))
        if any(x == w for x in ids) or (len(w) >= 6 and any(x.startswith(w) for x in ids if x)):
            hits.append((i, f))
    exact = [h for h in hits if w in (h[1].fingerprint, h[1].group)]
    if len(exact) == 1 or (len(hits) == 1):
        return (exact or hits)[0]
    if hits:
        # A group id names the group: its first finding of a forcible kind.
        groups = {f.group for _, f in hits}
        if len(groups) == 1:
            forcible = [h for h in hits if h[1].kind in FORCED_KINDS]
            return (forcible or hits)[0]
        raise UsageError(f"{wanted!r} matches {len(hits)} findings: give more of it")
    raise UsageError(
        f"no finding {wanted!r}: give its number in the report (1 to {len(findings)}), "
        "its fingerprint or its group id"
    )


# --- the plans ----------------------------------------------------------------------


def _site(file: str, line: int) -> str:
    return f"{file}:{line}"


def _point(e: Any, *, unit: bool = False) -> Point:
    return Point(e.op, e.target, _site(e.file, e.line), e.unit_name if unit else None, e.func)


def _unit_events(events: pl.DataFrame, pid: int, unit: str) -> pl.DataFrame:
    import polars as pl

    return events.filter((pl.col("pid") == pid) & (pl.col("unit") == unit)).sort("seq")


def _occurrence(events: pl.DataFrame, p: Point, pid: int, seq: int) -> int:
    """How often ``p`` was matched before ``seq`` in the recorded run."""
    import polars as pl

    file, _, line = (p.site or "").rpartition(":")
    cond = (pl.col("pid") == pid) & (pl.col("seq") < seq) & (pl.col("op") == p.op)
    cond &= pl.col("file") == file
    at_line = pl.col("line") == int(line or 0)
    cond &= at_line if p.func is None else at_line | (pl.col("func") == p.func)
    target = pl.col("var") if p.op in (s.Op.READ, s.Op.WRITE) else pl.col("obj")
    if p.target is not None:
        cond &= target == p.target
    if p.unit is not None:
        cond &= pl.col("unit_name") == p.unit
    return int(events.filter(cond).height)


def _next_access(events: pl.DataFrame, e: Any) -> Any:
    """The op of the next access of ``e``'s variable by ``e``'s unit, or ``None``."""
    import polars as pl

    mine = _unit_events(events, e.pid, e.unit).filter(
        (pl.col("seq") > e.seq) & (pl.col("var") == e.target)
    )
    return mine["op"][0] if mine.height else None


def _previous_event(events: pl.DataFrame, e: Any) -> dict[str, Any] | None:
    import polars as pl

    # Not the standard library's own locks (a thread's start handshake): holding a unit
    # there would hold the unit that waits for that handshake too.
    before = _unit_events(events, e.pid, e.unit).filter(
        (pl.col("seq") < e.seq) & ~pl.col("internal").fill_null(False)
    )
    return before.row(-1, named=True) if before.height else None


def _holds(f: Finding, events: pl.DataFrame) -> tuple[Hold, int, int]:
    """The hold that forces ``f``, with the pid and seq of its recorded instance."""
    evs = list(f.events)
    if f.kind in _LOCK_KINDS:
        firsts = [e for e in evs if e.role.startswith("holds")]
        if len(firsts) < 2:
            raise UsageError(f"this {f.kind} does not show two units' first locks")
        a, b = firsts[0], firsts[1]
        same = (a.file, a.line) == (b.file, b.line)
        # Locks by the site that takes them: their names count creations, which
        # another run may make in another order.
        at, until = (
            replace(_point(a, unit=same), target=None),
            replace(_point(b, unit=same), target=None),
        )
        return Hold(at, until), a.pid, a.seq
    if f.kind in ("lost_update", "atomicity_violation"):
        local = next((e for e in evs if e.role.startswith("local")), None)
        remote = next((e for e in evs if e.role.startswith("remote")), None)
        if local is None or remote is None:
            raise UsageError(f"this {f.kind} does not show a local and a remote access")
        return Hold(_point(local), _point(remote)), local.pid, local.seq
    if len(evs) < 2:
        raise UsageError(f"this {f.kind} does not show two accesses")
    first, second = evs[0], evs[1]
    for read, other in ((first, second), (second, first)):
        if (
            read.op == s.Op.READ
            and other.op == s.Op.WRITE
            and _next_access(events, read) == s.Op.WRITE
        ):
            # A read-modify-write: A reads, B writes, A writes.
            return Hold(_point(read), _point(other)), read.pid, read.seq
    prev = _previous_event(events, first)
    if prev is None:
        # The earlier access is its unit's first event: hold the later one's unit
        # right after its access instead, until the earlier access happened.
        return Hold(_point(second, unit=True), _point(first)), second.pid, second.seq
    # A memory access by its variable; a lock or hand-off by its object; a unit's
    # start and end by its site only (their object is a unit id, numbered per run).
    target = prev["var"] if prev["op"] in (s.Op.READ, s.Op.WRITE) else prev["obj"]
    if prev["op"] in _UNIT_OPS:
        target = None
    at = Point(prev["op"], target, _site(prev["file"], prev["line"]), first.unit_name, prev["func"])
    return Hold(at, _point(second)), first.pid, int(prev["seq"])


def plans(
    f: Finding, events: pl.DataFrame, *, attempts: int = 3, timeout: float = 20.0
) -> list[Plan]:
    """The plans to try for ``f``, in order (at most ``attempts``).

    Raises:
        UsageError: ``f``'s kind cannot be forced, or it lacks the events to plan with.
    """
    if f.kind not in FORCED_KINDS:
        raise UsageError(
            f"reproduce cannot force a {f.kind} finding (it forces {', '.join(FORCED_KINDS)})"
        )
    hold, pid, seq = _holds(f, events)
    recorded = _occurrence(events, hold.at, pid, seq)
    skips: list[int] = []
    for k in (recorded, *range(attempts)):
        if k not in skips:
            skips.append(k)
    wait = min(3.0, timeout / 4)
    return [
        Plan(holds=(replace(hold, skip=k),), timeout=timeout, wait=wait) for k in skips[:attempts]
    ]


# --- running and judging ------------------------------------------------------------


def _program_line(text: str) -> str:
    """The last line a program printed on stderr that is not tracelens' own."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("tracelens:")]
    return lines[-1].strip() if lines else ""


_NUMBER: Final = re.compile(r"-?\d+(?:\.\d+)?")


def _difference(serial: str, forced: str) -> str:
    """The first output line that differs, and by how much its first differing number."""
    a, b = serial.splitlines(), forced.splitlines()
    for i in range(max(len(a), len(b))):
        la = a[i] if i < len(a) else ""
        lb = b[i] if i < len(b) else ""
        if la == lb:
            continue
        text = f"{lb.strip()!r} instead of {la.strip()!r} in a serial run"
        for x, y in zip(_NUMBER.findall(la), _NUMBER.findall(lb), strict=False):
            if x != y:
                delta = float(y) - float(x)
                return f"{text}: {y} instead of {x}, off by {delta:+.10g}"
        return text
    return "the output differs from a serial run's"


def _lost_in_trace(run: Run, var: str) -> str:
    """What the run's trace shows of a lost update of ``var`` ('' when nothing)."""
    from tracelens.analyze import analyze, load

    try:
        report = analyze(load(run.trace), only=["lost_update"])
    except Exception:  # an unusable trace shows nothing
        return ""
    for f in report.findings:
        if f.kind == "lost_update" and var in (f.var, *f.vars) and f.lost_writes:
            return (
                f"the new trace shows the lost update: {f.lost_writes:,} of {f.var_writes:,} "
                f"writes to {f.var} were lost"
            )
    return ""


def _stuck_units(run: Run) -> tuple[str, list[str]]:
    units = (run.result.get("ended") or {}).get("units", [])
    parts, details = [], []
    for u in units:
        holds = ", ".join(u.get("holds", [])) or "nothing"
        waits = f" and waits for {u['waits_for']} at {u['at']}" if u.get("waits_for") else ""
        parts.append(f"{u['unit']} holds {holds}{waits}")
        details.append(f"stack of {u['unit']}:")
        details.extend(u.get("stack", "").rstrip("\n").splitlines())
    return "; ".join(parts), details


def verdict(run: Run, serial: Sequence[Run], f_var: str, timeout: float) -> Outcome:
    """Whether the forced ``run`` shows the bug, against the ``serial`` runs."""
    holds = run.result.get("holds", [])
    forced = bool(holds) and all(h.get("status") == "forced" for h in holds)
    how = [
        f"held {h['unit']} at {h['at']} until {h['why']}" for h in holds if h["status"] == "forced"
    ]
    if run.deadlocked and forced:
        text, details = _stuck_units(run)
        return Outcome(True, f"deadlocked: {text}", (*how, *details), run=run)
    if run.how == "timeout" and forced:
        text, details = _stuck_units(run)
        return Outcome(
            True, f"hung: the run did not finish within {timeout:g} s", (*how, *details), run=run
        )
    if not forced:
        why = next((h["why"] for h in holds if h.get("status") != "forced"), "no hold in the plan")
        return Outcome(False, f"could not be forced: {why}", run=run)
    base = serial[0]
    if run.status != base.status:
        said = _program_line(run.stderr)
        return Outcome(
            True,
            f"the program failed: exit status {run.status} instead of {base.status}"
            + (f" ({said})" if said else ""),
            tuple(how),
            run=run,
        )
    stable = all(r.stdout == base.stdout for r in serial)
    if stable and run.stdout != base.stdout:
        lost = _lost_in_trace(run, f_var)
        extra = (lost,) if lost else ()
        return Outcome(
            True,
            f"its output changed: {_difference(base.stdout, run.stdout)}",
            (*how, *extra),
            run=run,
        )
    lost = _lost_in_trace(run, f_var)
    if lost:
        return Outcome(True, lost, tuple(how), run=run)
    return Outcome(
        False,
        "the interleaving was forced, but the program's result did not change"
        + ("" if stable else " (its output differs between serial runs, so it was not compared)"),
        tuple(how),
        run=run,
    )


def force(
    command: Sequence[str] | Call,
    candidates: Sequence[Plan],
    *,
    var: str = "",
    output: str | Path | None = None,
    cwd: str | Path | None = None,
    in_process: bool = False,
) -> Outcome:
    """Run ``command`` serially, then under each plan until one reproduces the bug.

    ``in_process``: ``command`` is a ``Call``, run in this process (``run_in_process``).

    Raises:
        UsageError: The program could not run, or does not finish even serially.
    """
    if not candidates:
        raise UsageError("no plan to force")
    if in_process and not isinstance(command, Call):
        raise UsageError("only a Call of the program's function can run in this process")

    def run(plan: Plan, trace: str | Path | None = None) -> Run:
        if in_process and isinstance(command, Call):
            return run_in_process(command, plan, trace=trace, cwd=cwd)
        return run_scheduled(command, plan, trace=trace, cwd=cwd)

    timeout = candidates[0].timeout
    serial = [run(Plan(serial=True, timeout=timeout)) for _ in range(2)]
    if serial[0].status == 2 and "tracelens:" in serial[0].stderr and not serial[0].stdout:
        said = _program_line(serial[0].stderr) or serial[0].stderr.strip()
        raise UsageError(f"the program could not run: {said}")
    if serial[0].how in ("deadlock", "timeout"):
        raise UsageError(
            f"the program does not finish even when its units run one at a time ({serial[0].how})"
        )
    best: Outcome | None = None
    for n, plan in enumerate(candidates, 1):
        forced = run(plan, output)
        out = replace(verdict(forced, serial, var, timeout), plan=plan, attempts=n)
        if out.reproduced:
            return out
        if best is None or (
            "ordered by the lock" in out.summary and "ordered by" not in best.summary
        ):
            best = replace(out, attempts=n)
    assert best is not None
    return replace(best, attempts=len(candidates))


def reproduce(
    trace: Sequence[str | Path],
    finding: str,
    command: Sequence[str],
    *,
    output: str | Path | None = None,
    attempts: int = 3,
    timeout: float = 20.0,
    cwd: str | Path | None = None,
) -> tuple[int, Finding, Outcome]:
    """Load ``trace``, pick ``finding``, force it on ``command``: (index, finding, outcome).

    Raises:
        UsageError, TraceError: A bad finding id, trace or program.
    """
    from tracelens.analyze import analyze, load

    loaded = load([str(p) for p in trace])
    report = analyze(loaded)
    index, f = select(report.findings, finding)
    events = loaded.events.select(
        "pid", "seq", "op", "unit", "unit_name", "var", "obj", "file", "line", "func", "internal"
    ).collect()
    candidates = plans(f, events, attempts=attempts, timeout=timeout)
    return index, f, force(command, candidates, var=f.var, output=output, cwd=cwd)


# --- the emitted test ---------------------------------------------------------------

_TEST_DOC: Final = '''"""Forces the interleaving of tracelens finding {fingerprint} ({kind}).

Written by `tracelens reproduce --emit-test`. It runs {what} under the schedule
below (`tracelens.testing`) and fails while the race is there: the forced run's
result differs from a serial run's, it deadlocks, or its trace shows the lost update.
Once the accesses are ordered (a lock, a queue), the schedule cannot be forced and the
test passes. Edit PLAN to force another interleaving.{why}
"""
'''

_TEST_COMMAND: Final = '''
from tracelens.testing import Hold, Plan, Point, assert_not_reproduced

COMMAND = {command}
CWD = {cwd}
VAR = {var}
PLAN = {plan}


def test_{name}_cannot_be_forced() -> None:
    """Forcing the interleaving tracelens found keeps the program's serial result."""
    assert_not_reproduced(COMMAND, PLAN, var=VAR, cwd=CWD)
'''

_TEST_CALL: Final = '''
import sys

sys.path.insert(0, {path})  # where the program's code is

from {module} import {func}  # noqa: E402  (the program's code, imported)

from tracelens.testing import Call, Hold, Plan, Point, assert_not_reproduced  # noqa: E402

CWD = {cwd}
VAR = {var}
PLAN = {plan}


def test_{name}_cannot_be_forced() -> None:
    """Forcing the interleaving tracelens found on {func}() keeps its serial result."""
    call = Call.of({func}, *{args})
    assert_not_reproduced(call, PLAN, var=VAR, cwd=CWD, in_process={in_process})
'''


def _argument(node: ast.expr, argv: list[str]) -> Any:
    """The value of a ``__main__`` block's call argument, given the command's ``argv``:
    literals and expressions of ``sys.argv`` and ``len`` only (raises otherwise)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in ("sys", "len"):
            raise ValueError(f"it uses {sub.id}")
        if isinstance(sub, ast.Attribute) and sub.attr != "argv":
            raise ValueError(f"it uses .{sub.attr}")
    code = compile(ast.Expression(node), "<argument>", "eval")
    value = eval(code, {"__builtins__": {}, "sys": SimpleNamespace(argv=argv), "len": len})
    if ast.literal_eval(repr(value)) != value:
        raise ValueError(f"its value {value!r} is not a literal")
    return value


def importable_call(command: Sequence[str], cwd: str | Path) -> tuple[Call | None, str]:
    """The program's own function that a script's command runs, as a ``Call``, or why not.

    A script qualifies when its ``if __name__ == "__main__":`` block is one call of a
    function the script defines at module level, with arguments made of literals and
    ``sys.argv`` (evaluated with the command's arguments).
    """
    cmd = list(command)
    if cmd and Path(cmd[0]).name.startswith("python") and not cmd[0].endswith(".py"):
        cmd = cmd[1:]
    if not cmd or not cmd[0].endswith(".py"):
        return None, "the command does not run a script file (a -m module runs as __main__)"
    script = (Path(cwd) / cmd[0]).resolve()
    if not script.stem.isidentifier():
        return None, f"{script.name} is not an importable module name"
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as e:
        return None, f"{script.name} could not be read: {e}"
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in tree.body:
        if not (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            continue
        body = node.body
        call = body[0].value if len(body) == 1 and isinstance(body[0], ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in defined
            and not call.keywords
        ):
            return None, (
                f"the __main__ block of {script.name} is not one call of a function it defines"
            )
        try:
            args = tuple(_argument(a, [str(script), *cmd[1:]]) for a in call.args)
        except Exception as e:  # any argument we cannot compute here: the command form
            return None, f"an argument of {call.func.id}() cannot be computed here: {e}"
        return Call(script.stem, call.func.id, args, str(script.parent)), ""
    return None, f'{script.name} has no `if __name__ == "__main__":` block'


def _watched(script: Path) -> set[str]:
    """The names the script gives ``watch()``ed objects (``watch(obj, "model")``)."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if not (isinstance(f, ast.Name) and f.id == "watch") and not (
            isinstance(f, ast.Attribute) and f.attr == "watch"
        ):
            continue
        args = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "name")]
        out.update(a.value for a in args if isinstance(a, ast.Constant) and type(a.value) is str)
    return out


def _in_process_why_not(f: Finding, call: Call) -> str:
    """Why the finding's plan cannot run in the test's own process ('' when it can)."""
    if f.kind in _LOCK_KINDS:
        return "a forced deadlock cannot be ended inside the test's process"
    base = re.match(r"[A-Za-z_]\w*", f.var)
    if base is None or base.group() not in _watched(Path(call.path) / f"{call.module}.py"):
        return (
            f"{f.var} is recorded by instrumenting the program's code, which happens when "
            "`tracelens run` imports it, not in the test's process"
        )
    return ""


def _plan_code(plan: Plan) -> str:
    def point(p: Point) -> str:
        fields = [f"{k}={v!r}" for k, v in vars(p).items() if v is not None]
        return f"Point({', '.join(fields)})"

    holds = "".join(
        f"\n        Hold({point(h.at)}, {point(h.until)}, skip={h.skip!r})," for h in plan.holds
    )
    return (
        f"Plan(\n    holds=({holds}\n    ),\n"
        f"    timeout={plan.timeout!r},\n    wait={plan.wait!r},\n)"
    )


def emit_test(
    path: str | Path, command: Sequence[str], plan: Plan, f: Finding, cwd: str | Path
) -> None:
    """Write a standalone pytest file that forces ``plan``: on the program's own function,
    imported, where ``importable_call`` finds it, else on ``command`` (and says why)."""
    base = Path(cwd).resolve()
    name = re.sub(r"\W+", "_", f.kind).strip("_") or "race"
    fingerprint = f.fingerprint if re.fullmatch(r"[0-9a-f]+", f.fingerprint) else "?"
    call, why = importable_call(command, base)
    common = {"cwd": repr(str(base)), "var": repr(f.var), "plan": _plan_code(plan), "name": name}
    if call is not None:
        child = _in_process_why_not(f, call)
        where = "in a recorded child interpreter" if child else "in this process"
        doc = _TEST_DOC.format(
            fingerprint=fingerprint,
            kind=name,
            what=f"the program's function {call.module}.{call.func}(), imported, {where},",
            why=f"\n\nIt runs in a child interpreter: {child}." if child else "",
        )
        body = _TEST_CALL.format(
            path=repr(call.path),
            module=call.module,
            func=call.func,
            args=repr(call.args),
            in_process=not child,
            **common,
        )
    else:
        cmd = list(command)
        for i, a in enumerate(cmd):
            if a.endswith(".py") and (base / a).exists():
                cmd[i] = str((base / a).resolve())
                break
        doc = _TEST_DOC.format(
            fingerprint=fingerprint,
            kind=name,
            what="the program as a command",
            why=f"\n\nThe command form: the program's code could not be imported ({why}).",
        )
        body = _TEST_COMMAND.format(command=repr(cmd), **common)
    Path(path).write_text(doc + body, encoding="utf-8")
