"""What the TUI shows, computed from a loaded trace: no textual in here.

``build_model`` turns a ``Trace`` and its findings into a ``TraceModel``: the
summary numbers, the findings and variables as polars frames (what the tables
page through), and ``TraceModel.timeline(var)`` which builds a ``Timeline``: one
``Lane`` per unit with numpy arrays of positions, so the timeline widget can find
what falls into each screen column with one ``searchsorted`` per lane.

Positions are floats on one of two axes (``Axis``): ``ORDER`` puts the variable's
accesses at 0, 1, 2... in trace order (each access gets its own column at zoom 1,
which is what makes an interleaving readable); ``TIME`` puts them at their
timestamp in nanoseconds since the first event of the trace.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze import intervals
from tracelens.analyze.columns import G, global_order, order_key
from tracelens.analyze.findings import EventRef, Finding, severity_rank, sort_findings
from tracelens.analyze.intervals import NEVER
from tracelens.report import clean

_READ, _WRITE = s.Op.READ, s.Op.WRITE


class Axis(enum.Enum):
    """What the timeline's x axis measures."""

    ORDER = "order"
    TIME = "time"


# --- formatting ---------------------------------------------------------------------


_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m)?\s*$")
_UNITS: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
}


def parse_duration(text: str) -> int | None:
    """Parse ``1.5ms``, ``200us``, ``3s`` or a bare number of ms into ns (``None`` if bad)."""
    m = _DURATION.match(text)
    if not m:
        return None
    unit = m.group(2) or "ms"
    return int(float(m.group(1)) * _UNITS[unit])


def short_path(file: str | None, root: Path | None = None) -> str:
    """``file`` relative to ``root`` (default: the working directory) when inside it."""
    if not file:
        return "?"
    try:
        base = (root or Path.cwd()).resolve()
        rel = Path(file).resolve().relative_to(base)
    except (ValueError, OSError):
        return file
    return str(rel)


def site_text(file: str | None, line: int | None, func: str | None = None) -> str:
    """``file:line`` (short path), with `` in func`` when a function is known; control
    characters escaped (``clean``), ready to show."""
    where = f"{short_path(file)}:{line if line is not None else '?'}"
    return clean(f"{where} in {func}" if func else where)


# --- the model ----------------------------------------------------------------------


@dataclass
class Lane:
    """One unit's events on a timeline.

    Attributes:
        unit: The unit id (``t3``, ``a7``, ``<pid>/t3``).
        name: Its readable name (task name or thread name).
        rows: Row numbers into ``Timeline.events`` of this unit's events, in order.
        reads, writes: How many reads and writes of the variable the unit made.
        holds: Lock holds as ``(start, end)`` positions (two float arrays) and the lock names.
        rmw: Read-modify-write windows (a read followed by the unit's next access,
            a write) as ``(start, end)`` positions.
    """

    unit: str
    name: str
    rows: np.ndarray
    reads: int = 0
    writes: int = 0
    holds: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
    hold_locks: tuple[str, ...] = ()
    rmw: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))


@dataclass(frozen=True)
class Instance:
    """One occurrence of a finding on the timeline: the events to highlight."""

    finding: Finding
    label: str  # "first" or "widest"
    events: tuple[EventRef, ...]


@dataclass
class Timeline:
    """A variable's accesses (plus the events of its findings), ready to draw.

    Attributes:
        var: The variable.
        events: Its events sorted by trace order, with ``G`` and ``lane`` columns.
        lanes: One per unit, in order of first appearance.
        instances: The occurrences of findings about this variable.
        t0: Timestamp (ns) of the first event of the trace (times are shown from it).
    """

    var: str
    events: pl.DataFrame
    lanes: list[Lane]
    instances: list[Instance]
    t0: int
    holds: pl.DataFrame = field(default_factory=pl.DataFrame)
    windows: pl.DataFrame = field(default_factory=pl.DataFrame)
    _g: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _ts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _lane_of: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _is_write: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    _is_other: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    _hold_g: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._g = self.events[G].to_numpy()
        self._ts = self.events[c.TS].fill_null(self.t0).to_numpy()
        self._lane_of = self.events["lane"].to_numpy()
        on_var = (self.events[c.VAR] == self.var).fill_null(False)
        self._is_write = ((self.events[c.OP] == _WRITE).fill_null(False) & on_var).to_numpy()
        self._is_other = ~(
            self.events[c.OP].is_in([_READ, _WRITE]).fill_null(False) & on_var
        ).to_numpy()

    def __len__(self) -> int:
        return self.events.height

    # positions ----------------------------------------------------------------
    def positions(self, axis: Axis) -> np.ndarray:
        """Every event's position on ``axis`` (float array, in row order)."""
        if axis is Axis.ORDER:
            return np.arange(len(self), dtype=np.float64)
        return (self._ts - self.t0).astype(np.float64)

    def g_to_pos(self, g: np.ndarray, ts: np.ndarray, axis: Axis) -> np.ndarray:
        """Positions of other events (lock acquires, releases) given their G and ts."""
        if axis is Axis.ORDER:
            return np.searchsorted(self._g, g, side="left").astype(np.float64) - 0.5
        return (ts - self.t0).astype(np.float64)

    def is_write(self, row: int) -> bool:
        """Whether event ``row`` is a write."""
        return bool(self._is_write[row])

    def lane_of(self, row: int) -> int:
        """The lane index of event ``row``."""
        return int(self._lane_of[row])

    def row_of(self, pid: int, seq: int) -> int | None:
        """The row of the event ``(pid, seq)``, if it is on this timeline."""
        g = order_key(pid, seq)
        i = int(np.searchsorted(self._g, g))
        return i if i < len(self._g) and self._g[i] == g else None

    def event(self, row: int) -> dict[str, Any]:
        """Event ``row`` as a dict of its columns."""
        return self.events.row(row, named=True)

    def locks_held(self, row: int) -> list[str]:
        """The (non-internal) locks the event's unit held at the event."""
        ev = self.event(row)
        if self.holds.is_empty():
            return []
        g = ev[G]
        held = self.holds.filter(
            (pl.col(c.UNIT) == ev[c.UNIT]) & (pl.col("start_g") < g) & (pl.col("end_g") > g)
        )
        return held["lock"].to_list()

    def time_row(self, ns: int) -> int:
        """The first event at or after ``ns`` since the trace start (clamped)."""
        i = int(np.searchsorted(self._ts - self.t0, ns, side="left"))
        return min(i, len(self) - 1)

    def seq_row(self, seq: int) -> int:
        """The first event with sequence number at or after ``seq`` (clamped)."""
        seqs = self.events[c.SEQ].to_numpy()
        idx = np.nonzero(seqs >= seq)[0]
        return int(idx[0]) if len(idx) else len(self) - 1

    def search(self, text: str, after: int) -> int | None:
        """The next event after row ``after`` whose value, unit, site or op contains ``text``."""
        needle = text.lower()
        hay = (
            pl.concat_str(
                [
                    pl.col(col).cast(pl.String).fill_null("")
                    for col in (c.OP, c.VALUE, c.UNIT, c.UNIT_NAME, c.FILE, c.FUNC, c.LINE, c.SEQ)
                ],
                separator="\x1f",
            )
            .str.to_lowercase()
            .str.contains(needle, literal=True)
        )
        hits = self.events.with_row_index("__r").filter(hay)["__r"].to_numpy()
        if not len(hits):
            return None
        later = hits[hits > after]
        return int(later[0]) if len(later) else int(hits[0])


@dataclass
class TraceModel:
    """Everything the screens show, from one loaded trace.

    Attributes:
        paths: The trace files.
        events: The whole trace, collected, with the ``G`` order key.
        findings: The findings, worst first.
        summary: Numbers for the header (files, events, units, variables, ...).
        findings_frame: One row per finding (``idx`` points into ``findings``).
        variables_frame: One row per variable with access counts and findings.
        trace: The loaded trace (for the analysis).
        analysed: Whether ``findings`` holds the analysis' result yet.
        malformed_examples: The loader's first malformed lines.
    """

    paths: list[Path]
    events: pl.DataFrame
    findings: list[Finding]
    summary: dict[str, Any]
    findings_frame: pl.DataFrame
    variables_frame: pl.DataFrame
    malformed_examples: list[tuple[str, int, str]] = field(default_factory=list)
    trace: Any = None
    analysed: bool = False
    _counts: pl.DataFrame | None = None
    _holds: pl.DataFrame | None = None
    _timelines: dict[str, Timeline] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"TraceModel(paths={[str(p) for p in self.paths]}, events={self.events.height}, "
            f"findings={len(self.findings)}, analysed={self.analysed})"
        )

    def set_findings(
        self, findings: Iterable[Finding], summary: Mapping[str, Any] | None = None
    ) -> None:
        """Attach the analysis' findings (the tables and timelines show them from now on)."""
        fs = sort_findings(findings)
        self.findings = fs
        stats = getattr(self.trace, "stats", None)
        self.summary = trace_summary(self.events, stats, fs, summary)
        self.findings_frame = findings_frame(fs)
        counts = self._counts if self._counts is not None else variable_counts(self.events)
        self.variables_frame = variables_frame(counts, fs)
        self._timelines.clear()
        self.analysed = True

    @property
    def t0(self) -> int:
        """Timestamp of the first event (ns)."""
        return int(self.summary.get("t0", 0))

    def lock_holds(self) -> pl.DataFrame:
        """Continuous holds of non-internal locks (``lock_holds``), computed once."""
        if self._holds is None:
            self._holds = lock_holds(self.events)
        return self._holds

    def findings_of(self, var: str) -> list[Finding]:
        """The findings about ``var``, in display order."""
        return [f for f in self.findings if f.var == var]

    def timeline(self, var: str) -> Timeline:
        """The timeline of ``var`` (cached)."""
        if var not in self._timelines:
            self._timelines[var] = build_timeline(self, var)
        return self._timelines[var]


def lock_holds(events: pl.DataFrame) -> pl.DataFrame:
    """Holds of non-internal locks (``intervals.lock_holds``): ``unit``, ``lock``, and
    their ends ``start_g``, ``end_g``, ``start_ts``, ``end_ts``, by unit and start."""
    return (
        intervals.lock_holds(events.lazy())
        .select(c.UNIT, "lock", "start_g", "end_g", "start_ts", "end_ts")
        .sort(c.UNIT, "start_g")
        .collect()
    )


def with_order(events: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """The events, collected, with the ``G`` order key."""
    lf = events.lazy() if isinstance(events, pl.DataFrame) else events
    return lf.with_columns(global_order()).collect()


def trace_summary(
    events: pl.DataFrame,
    stats: Any,
    findings: Sequence[Finding],
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The header's numbers; keys of ``base`` (the analyzer's summary) win."""
    ops = pl.col(c.OP)
    row = events.select(
        pl.col(c.UNIT).n_unique().alias("units"),
        pl.col(c.VAR).filter(ops.is_in([_READ, _WRITE])).n_unique().alias("variables"),
        pl.col(c.OBJ)
        .filter(ops.is_in([s.Op.ACQUIRE, s.Op.RELEASE, s.Op.SEND, s.Op.RECV]))
        .n_unique()
        .alias("sync_objects"),
        pl.col(c.TS).min().alias("t0"),
        (pl.col(c.TS).max() - pl.col(c.TS).min()).alias("time_span_ns"),
    ).row(0, named=True)
    out: dict[str, Any] = {
        "files": len(getattr(stats, "files", []) or []),
        "events": events.height,
        "units": row["units"],
        "variables": row["variables"],
        "sync_objects": row["sync_objects"],
        "skipped": getattr(stats, "skipped", 0),
        "app_lines": getattr(stats, "app_lines", 0),
        "malformed": getattr(stats, "malformed", 0),
        "time_span_ns": row["time_span_ns"] or 0,
    }
    out.update({k: v for k, v in (base or {}).items() if not isinstance(v, Mapping | list)})
    out["t0"] = row["t0"] or 0
    by_sev: dict[str, int] = {}
    for f in findings:
        by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
    out["findings"] = len(findings)
    out["findings_by_severity"] = by_sev
    return out


def findings_frame(findings: Sequence[Finding]) -> pl.DataFrame:
    """One row per finding: what the findings table shows, plus ``idx`` and sort keys."""
    rows = []
    for i, f in enumerate(findings):
        sites = [f"{Path(st.file).name}:{st.line}" for st in f.sites]
        dedup = list(dict.fromkeys(sites))
        rows.append(
            {
                "idx": i,
                "severity": f.severity,
                "sev_rank": severity_rank(f.severity)
                if f.severity in ("error", "warning", "note")
                else 9,
                "kind": f.kind,
                "var": f.var,
                "units": ", ".join(f.units),
                "n_units": len(f.units),
                "sites": " → ".join(dedup),
                "count": f.count,
            }
        )
    schema = {
        "idx": pl.Int64,
        "severity": pl.String,
        "sev_rank": pl.Int64,
        "kind": pl.String,
        "var": pl.String,
        "units": pl.String,
        "n_units": pl.Int64,
        "sites": pl.String,
        "count": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def variable_counts(events: pl.DataFrame, top: int = 3) -> pl.DataFrame:
    """One row per variable: reads, writes, accesses, units and the busiest units."""
    acc = events.lazy().filter(pl.col(c.OP).is_in([_READ, _WRITE]))
    is_r = (pl.col(c.OP) == _READ).cast(pl.Int64)
    is_w = (pl.col(c.OP) == _WRITE).cast(pl.Int64)
    per_var = acc.group_by(c.VAR).agg(
        is_r.sum().alias("reads"),
        is_w.sum().alias("writes"),
        pl.len().cast(pl.Int64).alias("accesses"),
        pl.col(c.UNIT).n_unique().cast(pl.Int64).alias("units"),
    )
    per_unit = (
        acc.group_by(c.VAR, c.UNIT_NAME)
        .agg(is_r.sum().alias("r"), is_w.sum().alias("w"))
        .with_columns((pl.col("r") + pl.col("w")).alias("n"))
        .sort(c.VAR, "n", c.UNIT_NAME, descending=[False, True, False])
        .group_by(c.VAR, maintain_order=True)
        .agg(
            pl.format("{} {}r/{}w", pl.col(c.UNIT_NAME).fill_null("?"), "r", "w")
            .head(top)
            .str.join("  ")
            .alias("by_unit"),
            pl.len().alias("_nu"),
        )
        .with_columns(
            pl.when(pl.col("_nu") > top)
            .then(pl.format("{}  +{}", "by_unit", pl.col("_nu") - top))
            .otherwise(pl.col("by_unit"))
            .alias("by_unit")
        )
        .drop("_nu")
    )
    return per_var.join(per_unit, on=c.VAR, how="left").collect()


def variables_frame(counts: pl.DataFrame, findings: Sequence[Finding] | None) -> pl.DataFrame:
    """``variable_counts`` with each variable's number of findings (null: not analysed yet)."""
    n: dict[str, int] = {}
    worst: dict[str, int] = {}
    for f in findings or ():
        n[f.var] = n.get(f.var, 0) + 1
        r = severity_rank(f.severity) if f.severity in ("error", "warning", "note") else 9
        worst[f.var] = min(worst.get(f.var, 9), r)
    fcount = pl.DataFrame(
        {"var": list(n), "findings": list(n.values()), "worst": [worst[v] for v in n]},
        schema={"var": pl.String, "findings": pl.Int64, "worst": pl.Int64},
    )
    done = findings is not None
    return (
        counts.join(fcount, on=c.VAR, how="left")
        .with_columns(
            pl.col("findings").fill_null(0) if done else pl.col("findings"),
            pl.col("worst").fill_null(9),
        )
        .sort(["worst", "accesses", c.VAR], descending=[False, True, False])
        .select(c.VAR, "reads", "writes", "accesses", "units", "by_unit", "findings", "worst")
    )


def build_model(
    trace: Any,
    findings: Iterable[Finding] | None = None,
    summary: Mapping[str, Any] | None = None,
    *,
    events: pl.DataFrame | None = None,
) -> TraceModel:
    """Build the ``TraceModel`` of a loaded trace.

    Args:
        trace: The loaded trace.
        findings: Its findings; ``None`` when the analysis has not run yet (call
            ``TraceModel.set_findings`` when it has).
        summary: The analyzer's summary, if any.
        events: ``with_order(trace.events)``, when already computed.
    """
    ev = events if events is not None else with_order(trace.events)
    counts = variable_counts(ev)
    model = TraceModel(
        paths=list(trace.paths),
        events=ev,
        findings=[],
        summary={},
        findings_frame=findings_frame([]),
        variables_frame=variables_frame(counts, None),
        malformed_examples=list(getattr(trace.stats, "malformed_examples", []) or []),
        trace=trace,
        _counts=counts,
    )
    model.summary = trace_summary(ev, trace.stats, [], summary)
    model.summary["findings"] = None
    if findings is not None:
        model.set_findings(findings, summary)
    return model


def build_timeline(model: TraceModel, var: str) -> Timeline:
    """A variable's timeline: its accesses, its findings' events, lanes, holds and windows."""
    ev = model.events
    fs = model.findings_of(var)
    keys = {(e.pid, e.seq) for f in fs for e in (*f.events, *f.worst)}
    gs = [order_key(p, q) for p, q in keys]
    sel = pl.col(c.OP).is_in([_READ, _WRITE]) & (pl.col(c.VAR) == var)
    if gs:
        sel = sel | pl.col(G).is_in(gs)
    tl = ev.filter(sel).sort(G)
    units = tl[c.UNIT].unique(maintain_order=True).to_list()
    lane_idx = {u: i for i, u in enumerate(units)}
    tl = tl.with_columns(
        pl.col(c.UNIT).replace_strict(lane_idx, return_dtype=pl.Int64).alias("lane")
    )
    names = dict(zip(tl[c.UNIT].to_list(), tl[c.UNIT_NAME].fill_null("").to_list(), strict=True))
    t0 = model.t0
    holds = model.lock_holds()
    if tl.height:
        g_lo, g_hi = tl[G].min(), tl[G].max()
        holds = holds.filter(
            pl.col(c.UNIT).is_in(units) & (pl.col("end_g") > g_lo) & (pl.col("start_g") < g_hi)
        )
    instances = []
    for f in fs:
        instances.append(Instance(f, "first", f.events))
        if f.worst and f.worst != f.events:
            instances.append(Instance(f, "widest", f.worst))
    lanes_df = tl.with_row_index("__r").partition_by("lane", as_dict=True, maintain_order=True)
    windows = intervals.rmw_windows(tl.lazy().filter(pl.col(c.VAR) == var)).collect()
    timeline = Timeline(
        var=var, events=tl, lanes=[], instances=instances, t0=t0, holds=holds, windows=windows
    )
    lanes = []
    for u in units:
        part = lanes_df[(lane_idx[u],)]
        ops = part[c.OP].to_numpy()
        is_var = (part[c.VAR] == var).fill_null(False).to_numpy()
        lanes.append(
            Lane(
                unit=u,
                name=names.get(u) or u,
                rows=part["__r"].to_numpy().astype(np.int64),
                reads=int(((ops == _READ) & is_var).sum()),
                writes=int(((ops == _WRITE) & is_var).sum()),
            )
        )
    timeline.lanes = lanes
    return timeline


@dataclass
class LaneGeometry:
    """A lane's events, holds and windows as positions on one axis (for drawing)."""

    pos: np.ndarray  # event positions, sorted
    rows: np.ndarray  # event rows, same order
    writes: np.ndarray  # cumulative count of writes of the variable, len(pos) + 1
    others: np.ndarray  # cumulative count of other events (a finding's lock events)
    hold_start: np.ndarray
    hold_end: np.ndarray
    rmw_start: np.ndarray
    rmw_end: np.ndarray


def lane_geometry(tl: Timeline, axis: Axis) -> list[LaneGeometry]:
    """Every lane's positions on ``axis``."""
    allpos = tl.positions(axis)
    out = []
    holds = tl.holds
    for lane in tl.lanes:
        rows = lane.rows
        pos = allpos[rows]
        isw = tl._is_write[rows]
        writes = np.concatenate([[0], np.cumsum(isw)])
        iso = tl._is_other[rows]
        others = np.concatenate([[0], np.cumsum(iso)])
        h = holds.filter(pl.col(c.UNIT) == lane.unit) if not holds.is_empty() else holds
        if h.height:
            end_g = h["end_g"].to_numpy()
            end_ts = h["end_ts"].fill_null(int(tl._ts.max()) if len(tl) else 0).to_numpy()
            hs = tl.g_to_pos(h["start_g"].to_numpy(), h["start_ts"].to_numpy(), axis)
            he = tl.g_to_pos(end_g, end_ts, axis)
            if axis is Axis.ORDER:
                he = np.where(end_g >= NEVER, float(len(tl)), he)
        else:
            hs = he = np.empty(0)
        # read-modify-write windows (``intervals.rmw_windows``): both ends are accesses
        # of the variable, so on the timeline
        w = tl.windows.filter(pl.col(c.UNIT) == lane.unit) if tl.windows.height else tl.windows
        if w.height:
            rs = allpos[np.searchsorted(tl._g, w["start_g"].to_numpy())]
            re_ = allpos[np.searchsorted(tl._g, w["end_g"].to_numpy())]
        else:
            rs = re_ = np.empty(0)
        out.append(LaneGeometry(pos, rows, writes, others, hs, he, rs, re_))
    return out


def run_analysis(trace: Any, **options: Any) -> tuple[list[Finding], dict[str, Any]]:
    """Run the analyzer on ``trace``: ``(findings, summary)``.

    Args:
        trace: The loaded trace.
        **options: Passed to ``tracelens.analyze.analyze`` (``only``, ``suppressions``).
    """
    from tracelens.analyze import analyze

    report = analyze(trace, **options)
    return list(report.findings), dict(getattr(report, "summary", {}) or {})
