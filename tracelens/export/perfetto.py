"""Export a trace to Chrome trace-event JSON, which ui.perfetto.dev opens.

What the timeline shows:

* one thread track per unit (thread or asyncio task), named after it; ``tid`` is a
  small number per process (recorded ids need not fit the 32 bits Perfetto wants);
* every read and write as an instant on its unit's track;
* lock holds (acquire to release) as slices on the unit's track, or as async slices
  when they do not nest;
* every read-modify-write window (a read followed by the same unit's write of the
  same variable) and every ``tracelens.atomic`` region as an async slice: windows of
  different variables on one thread overlap, and only async slices may;
* every finding's instances as async slices in the ``finding`` category, with a flow
  arrow from each remote access to the access that closes the window (flow "v2":
  ``bind_id`` with ``flow_out``/``flow_in`` on zero-length slices, which Perfetto
  binds directly to those slices).

Timestamps are microseconds since the first event of the trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import polars as pl

from tracelens.analyze import intervals
from tracelens.analyze.findings import EventRef, Finding

_MAX_ID = 2**31 - 1


class _Clock:
    def __init__(self, t0: int) -> None:
        self.t0 = t0

    def __call__(self, ts: int | None) -> float:
        return round(((ts or self.t0) - self.t0) / 1000, 3)


class _Ids:
    """Perfetto process and thread numbers for the trace's pids and units."""

    def __init__(self) -> None:
        self.pids: dict[int, int] = {}
        self.tids: dict[tuple[int, str], int] = {}
        self.names: dict[tuple[int, str], str] = {}

    def pid(self, pid: int | None) -> int:
        p = pid or 0
        if p not in self.pids:
            self.pids[p] = p if 0 < p <= _MAX_ID else len(self.pids) + 1
        return self.pids[p]

    def tid(self, pid: int | None, unit: str, name: str | None = None) -> int:
        key = (pid or 0, unit)
        if key not in self.tids:
            self.pid(pid)
            self.tids[key] = sum(1 for k in self.tids if k[0] == key[0]) + 1
            self.names[key] = name or unit
        return self.tids[key]


def to_chrome_trace(
    events: pl.LazyFrame | pl.DataFrame, findings: Sequence[Finding] = ()
) -> dict[str, Any]:
    """Build the Chrome trace-event document.

    Args:
        events: The loaded events (``Trace.events``; columns of docs/architecture.md).
        findings: The report's findings, drawn as slices with flow arrows.

    Returns:
        ``{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}``.
    """
    df = events.collect() if isinstance(events, pl.LazyFrame) else events
    # An event without ``ts`` (the format has it on every event, the loader does not
    # insist) is drawn at its process's previous event's time (else the next one's).
    df = df.sort(["pid", "seq"]).with_columns(
        pl.col("ts").forward_fill().backward_fill().over("pid").fill_null(0)
    )
    first = df.select(pl.col("ts").min()).item() if df.height else None
    t0 = int(first) if first is not None else 0
    for f in findings:
        for e in (*f.events, *f.worst):
            if e.ts:
                t0 = min(t0, e.ts) if t0 else e.ts
    clock = _Clock(t0)
    ids = _Ids()
    out: list[dict[str, Any]] = []
    # register units in order of appearance, so tracks are in a natural order
    for pid, unit, name in (
        df.select("pid", "unit", "unit_name")
        .unique(subset=["pid", "unit"], keep="first", maintain_order=True)
        .iter_rows()
    ):
        ids.tid(pid, unit, name)

    endpoints = _finding_slices(findings, clock, ids, out)
    _accesses(df, clock, ids, endpoints, out)
    _lock_holds(df, clock, ids, out)
    _windows(df, clock, ids, out)
    _atomic_regions(df, clock, ids, out)

    meta: list[dict[str, Any]] = []
    for raw, pid in ids.pids.items():
        meta.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": pid,
                "tid": 0,
                "args": {"name": f"python pid {raw}"},
            }
        )
    for (raw_pid, unit), tid in ids.tids.items():
        pid = ids.pid(raw_pid)
        name = ids.names[(raw_pid, unit)]
        meta.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": pid,
                "tid": tid,
                "args": {"name": f"{name} [{unit}]"},
            }
        )
        meta.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    from tracelens import __version__

    return {
        "traceEvents": meta + out,
        "displayTimeUnit": "ns",
        "otherData": {"tool": "tracelens", "version": __version__, "t0_ns": t0},
    }


def dumps(doc: dict[str, Any]) -> str:
    """The document as compact JSON text."""
    return orjson.dumps(doc).decode() + "\n"


def _site(file: Any, line: Any) -> str:
    return f"{file}:{line}" if file else "?"


def _accesses(
    df: pl.DataFrame,
    clock: _Clock,
    ids: _Ids,
    skip: set[tuple[int, str, int]],
    out: list[dict[str, Any]],
) -> None:
    acc = df.filter(pl.col("op").is_in(["read", "write"])).select(
        "pid", "seq", "ts", "op", "unit", "var", "value", "file", "line", "func"
    )
    for pid, seq, ts, op, unit, var, value, file, line, func in acc.iter_rows():
        if (pid or 0, unit, seq) in skip:
            continue
        out.append(
            {
                "ph": "i",
                "s": "t",
                "cat": "access",
                "name": f"{op} {var}",
                "ts": clock(ts),
                "pid": ids.pid(pid),
                "tid": ids.tid(pid, unit),
                "args": {"value": value, "site": _site(file, line), "func": func, "seq": seq},
            }
        )


def _lock_holds(df: pl.DataFrame, clock: _Clock, ids: _Ids, out: list[dict[str, Any]]) -> None:
    """Lock holds (``intervals.lock_holds``) as slices; a hold never released ends at its
    unit's last event."""
    found = intervals.lock_holds(df.lazy()).collect()
    last_ts = {
        (pid or 0, unit): ts
        for pid, unit, ts in df.group_by("pid", "unit").agg(pl.col("ts").max()).iter_rows()
    }
    holds: dict[tuple[int, str], list[tuple[int, int, str, dict[str, Any]]]] = {}
    for pid, unit, obj, kind, start, end, wait_ns, file, line in found.select(
        "pid", "unit", "lock", "kind", "start_ts", "end_ts", "wait_ns", "file", "line"
    ).iter_rows():
        args: dict[str, Any] = {
            "lock": obj,
            "kind": kind,
            "wait_ns": wait_ns,
            "site": _site(file, line),
        }
        if end is None:
            end = last_ts.get((pid or 0, unit), start)
            args["unreleased"] = True
        holds.setdefault((pid or 0, unit), []).append((start, end, obj, args))
    n_async = 0
    for (pid, unit), spans in holds.items():
        spans.sort(key=lambda h: (h[0], -h[1]))
        stack: list[int] = []
        for start, end, obj, args in spans:
            while stack and stack[-1] <= start:
                stack.pop()
            base = {"cat": "lock", "name": f"hold {obj}", "pid": ids.pid(pid), "args": args}
            if stack and end > stack[-1]:  # overlaps without nesting: async
                n_async += 1
                aid = f"lock{n_async}"
                out.append(
                    {**base, "ph": "b", "id": aid, "ts": clock(start), "tid": ids.tid(pid, unit)}
                )
                out.append(
                    {**base, "ph": "e", "id": aid, "ts": clock(end), "tid": ids.tid(pid, unit)}
                )
                continue
            stack.append(end)
            out.append(
                {
                    **base,
                    "ph": "X",
                    "ts": clock(start),
                    "dur": round((end - start) / 1000, 3),
                    "tid": ids.tid(pid, unit),
                }
            )


def _windows(df: pl.DataFrame, clock: _Clock, ids: _Ids, out: list[dict[str, Any]]) -> None:
    """Read-modify-write windows (``intervals.rmw_windows``) as async slices."""
    win = intervals.rmw_windows(df.lazy()).select("pid", "unit", "var", "start_ts", "end_ts")
    for n, (pid, unit, var, start, end) in enumerate(win.collect().iter_rows(), 1):
        base = {
            "cat": "window",
            "name": f"read-modify-write {var}",
            "id": f"w{n}",
            "pid": ids.pid(pid),
            "tid": ids.tid(pid, unit),
        }
        out.append({**base, "ph": "b", "ts": clock(start), "args": {"var": var, "unit": unit}})
        out.append({**base, "ph": "e", "ts": clock(end)})


def _atomic_regions(df: pl.DataFrame, clock: _Clock, ids: _Ids, out: list[dict[str, Any]]) -> None:
    """Ended atomic regions (``intervals.atomic_regions``, nested ones too) as async slices."""
    regions = (
        intervals.atomic_regions(df.lazy())
        .filter(pl.col("end_ts").is_not_null())
        .select("pid", "unit", "region", "start_ts", "end_ts")
    )
    for n, (pid, unit, obj, start, end) in enumerate(regions.collect().iter_rows(), 1):
        base = {
            "cat": "atomic",
            "name": f"atomic {obj}",
            "id": f"a{n}",
            "pid": ids.pid(pid),
            "tid": ids.tid(pid, unit),
        }
        out.append({**base, "ph": "b", "ts": clock(start)})
        out.append({**base, "ph": "e", "ts": clock(end)})


def _instances(f: Finding) -> Iterable[tuple[str, tuple[EventRef, ...]]]:
    if f.events:
        yield "first", f.events
    if f.worst and f.worst != f.events:
        yield "widest", f.worst


def _finding_slices(
    findings: Sequence[Finding], clock: _Clock, ids: _Ids, out: list[dict[str, Any]]
) -> set[tuple[int, str, int]]:
    """Draw the findings; return the accesses drawn as flow endpoints (not as instants)."""
    endpoints: set[tuple[int, str, int]] = set()
    n_flow = 0
    for fi, f in enumerate(findings, 1):
        for which, evs in _instances(f):
            local = [e for e in evs if not e.role.startswith("remote")]
            if not local:
                continue
            lu = local[0]
            mine = [e for e in local if e.unit == lu.unit and e.pid == lu.pid]
            start, end = mine[0], mine[-1]
            sid = f"f{fi}{which[0]}"
            base = {
                "cat": "finding",
                "name": f"{f.kind} {f.var}",
                "id": sid,
                "pid": ids.pid(lu.pid),
                "tid": ids.tid(lu.pid, lu.unit, lu.unit_name),
            }
            out.append(
                {
                    **base,
                    "ph": "b",
                    "ts": clock(start.ts),
                    "args": {
                        "severity": f.severity,
                        "count": f.count,
                        "instance": which,
                        "explanation": f.explanation,
                        "fingerprint": f.fingerprint,
                        "units": list(f.units),
                    },
                }
            )
            out.append({**base, "ph": "e", "ts": clock(max(end.ts, start.ts))})
            for r in evs:
                if not r.role.startswith("remote"):
                    continue
                into = next((e for e in mine if e.ts >= r.ts and e.seq != r.seq), None)
                if into is None:
                    continue
                n_flow += 1
                bind = f"0x{n_flow:x}"
                out.append(_endpoint(r, clock, ids, bind, "flow_out", f))
                out.append(_endpoint(into, clock, ids, bind, "flow_in", f))
                endpoints.add((r.pid, r.unit, r.seq))
                endpoints.add((into.pid, into.unit, into.seq))
    return endpoints


def _endpoint(
    e: EventRef, clock: _Clock, ids: _Ids, bind: str, direction: str, f: Finding
) -> dict[str, Any]:
    return {
        "ph": "X",
        "cat": "access",
        "name": f"{e.op} {e.target}",
        "ts": clock(e.ts),
        "dur": 0,
        "pid": ids.pid(e.pid),
        "tid": ids.tid(e.pid, e.unit, e.unit_name),
        "bind_id": bind,
        direction: True,
        "args": {
            "value": e.value,
            "site": _site(e.file, e.line),
            "func": e.func,
            "seq": e.seq,
            "role": e.role,
            "finding": f"{f.kind} {f.var}",
        },
    }
