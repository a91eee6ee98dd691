"""The finding model: what every analysis produces and every renderer consumes.

An analysis yields collected polars frames with the columns of ``FINDING_SCHEMA``
(one row per finding, already grouped: one row per kind, variable and pair of
code sites, with an occurrence count; ``tracelens.analyze.run`` has the protocol).
The builders here (``detail_columns``, ``event_struct``, ``site_struct``,
``event_row``, ``site_row``) are the one way analyses make a finding's events and
sites. ``to_findings`` turns such a frame into ``Finding`` objects, which is what
renderers and the TUI see; no renderer knows how a finding was computed.

The field names here are the report's JSON contract (``docs/report-format.md``):
extend them, never rename them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from tracelens.analyze import columns as c
from tracelens.analyze.kinds import ERROR, NOTE, SEVERITIES, WARNING, severity_rank
from tracelens.analyze.parallel import gc_paused

__all__ = [
    "ERROR",
    "EVENT_DTYPE",
    "EVENT_FIELDS",
    "FINDING_SCHEMA",
    "MAX_LISTED_LOCKS",
    "NOTE",
    "OPTIONAL_FINDING_COLUMNS",
    "SEVERITIES",
    "SITE_DTYPE",
    "WARNING",
    "EventRef",
    "Finding",
    "Site",
    "detail_columns",
    "details_at",
    "empty_findings",
    "event_row",
    "event_struct",
    "listed_locks",
    "severity_rank",
    "site_row",
    "site_struct",
    "sort_findings",
    "to_findings",
    "who",
    "with_lists",
]

SITE_DTYPE: Final = pl.Struct({"file": pl.String, "line": pl.Int64, "func": pl.String})

#: One event of a finding's instance, with the role it plays in the interleaving.
EVENT_DTYPE: Final = pl.Struct(
    {
        "role": pl.String,  # e.g. "local read", "remote write", "local write"
        "seq": pl.Int64,
        "ts": pl.Int64,
        "pid": pl.Int64,
        "unit": pl.String,
        "unit_name": pl.String,
        "op": pl.String,
        "target": pl.String,  # the variable, lock or object the event is on
        "value": pl.String,
        "file": pl.String,
        "line": pl.Int64,
        "func": pl.String,
        "locks": pl.List(pl.String),  # locks the unit held at that event, when known
        # how many (``locks`` may list fewer: the first ``MAX_LISTED_LOCKS``); null: len
        "lock_count": pl.Int64,
    }
)

#: The fields of an event of a finding that every event has, in order (``EVENT_DTYPE``
#: but ``lock_count``, which ``EventRef`` and the JSON report have only when ``locks``
#: is cut short).
EVENT_FIELDS: Final = tuple(n for n in EVENT_DTYPE.to_schema() if n != "lock_count")

#: Columns of the findings frame that every analysis returns.
FINDING_SCHEMA: Final = pl.Schema(
    {  # type: ignore[arg-type]  # polars' stubs do not take Struct/List instances here
        "kind": pl.String,
        "severity": pl.String,
        "var": pl.String,
        "units": pl.List(pl.String),
        "sites": pl.List(SITE_DTYPE),
        "count": pl.Int64,
        "events": pl.List(EVENT_DTYPE),  # the first instance's events, in order
        "worst": pl.List(EVENT_DTYPE),  # the widest instance's events (may equal events)
        "explanation": pl.String,
    }
)


#: Columns an analysis may add after ``FINDING_SCHEMA``'s (missing: 0 in every row).
OPTIONAL_FINDING_COLUMNS: Final = pl.Schema({"lost_writes": pl.Int64, "var_writes": pl.Int64})


def empty_findings() -> pl.DataFrame:
    """A findings frame with no rows."""
    return pl.DataFrame(schema=FINDING_SCHEMA)


def detail_columns() -> list[pl.Expr]:
    """The columns of a loaded event that a finding shows, named and typed as the fields
    of ``EVENT_DTYPE`` (all but ``role`` and ``locks``), plus ``G``."""
    return [
        c.global_order(),
        pl.col(c.SEQ).cast(pl.Int64),
        pl.col(c.TS).cast(pl.Int64),
        pl.col(c.PID).cast(pl.Int64),
        pl.col(c.UNIT).cast(pl.String),
        pl.coalesce(pl.col(c.UNIT_NAME).cast(pl.String), pl.col(c.UNIT)).alias("unit_name"),
        pl.col(c.OP).cast(pl.String).alias("op"),
        pl.coalesce(pl.col(c.VAR), pl.col(c.OBJ)).cast(pl.String).alias("target"),
        pl.col(c.VALUE).cast(pl.String),
        pl.col(c.FILE).cast(pl.String),
        pl.col(c.LINE).cast(pl.Int64),
        pl.col(c.FUNC).cast(pl.String),
    ]


def event_struct(prefix: str, role: pl.Expr, **fields: pl.Expr) -> pl.Expr:
    """An ``EVENT_DTYPE`` struct from the columns ``<prefix><field>``.

    Args:
        prefix: Prefix of the columns holding the fields (``detail_columns`` and
            ``locks``, prefixed).
        role: The role of the event in the finding.
        **fields: Expressions for fields not held in prefixed columns (an analysis
            that knows the target or the unit of the event otherwise). ``lock_count``
            is the length of ``locks`` unless given (an analysis that lists fewer).

    Returns:
        The struct expression.
    """
    parts = []
    for name, dtype in EVENT_DTYPE.to_schema().items():
        if name == "lock_count" and name not in fields:
            expr = fields.get("locks", pl.col(prefix + "locks")).list.len()
        else:
            expr = role if name == "role" else fields.get(name, pl.col(prefix + name))
        parts.append(expr.cast(dtype).alias(name))
    return pl.struct(parts)


def site_struct(prefix: str) -> pl.Expr:
    """A ``SITE_DTYPE`` struct from the columns ``<prefix>file``, ``line``, ``func``."""
    return pl.struct(
        pl.col(prefix + "file").alias("file"),
        pl.col(prefix + "line").alias("line"),
        pl.col(prefix + "func").alias("func"),
    ).cast(SITE_DTYPE)


def details_at(events: pl.LazyFrame, gs: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The ``detail_columns`` of the events at these ``G``s, by ``G`` (for the analyses
    that build their few findings' events row by row: deadlocks, hangs, lock order)."""
    wanted = sorted(set(gs))
    rows = events.select(detail_columns()).filter(pl.col(c.G).is_in(wanted)).collect()
    return {r[c.G]: r for r in rows.iter_rows(named=True)}


def event_row(detail: Mapping[str, Any], role: str, locks: Iterable[str]) -> dict[str, Any]:
    """An event of a finding row as a dict (an analysis that builds its rows in Python).

    Args:
        detail: A row of ``detail_columns``.
        role: The role of the event in the finding.
        locks: The locks its unit held.
    """
    row = {name: detail.get(name) for name in EVENT_FIELDS}
    held = list(locks)
    row["role"] = role
    row["locks"] = held
    row["lock_count"] = len(held)
    return row


def site_row(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The code site of a row of ``detail_columns``, as a ``SITE_DTYPE`` dict."""
    return {"file": detail["file"], "line": detail["line"], "func": detail["func"]}


def who(detail: Mapping[str, Any]) -> str:
    """``thread NAME`` or ``task NAME`` for a row of ``detail_columns``."""
    return f"{c.unit_word(str(detail['unit']))} {detail['unit_name']}"


def with_lists(frame: pl.DataFrame, lists: Mapping[str, Sequence[pl.Expr]]) -> pl.DataFrame:
    """``frame`` with list columns, each made of the given expressions' values per row.

    What ``pl.concat_list`` computes, for the list-of-struct columns of findings
    (``events``, ``sites``): ``concat_list`` of structs holding a list field takes about
    35 µs a row in polars 2.1 (0.2 s for 5,700 findings), stacking the parts and
    grouping them by row 0.015 s.

    Args:
        frame: The rows.
        lists: New column name -> the expressions (evaluated on ``frame``) whose
            values, in this order, make each row's list.

    Returns:
        ``frame`` with the new columns (same rows, same order).
    """
    row = "__row"
    base = frame.with_row_index(row)
    new = []
    for name, exprs in lists.items():
        parts = pl.concat([base.select(row, e.alias(name)) for e in exprs], how="vertical")
        # groups in order of first appearance (row order); within a group, the parts'
        # order, as they were stacked
        grouped = parts.group_by(row, maintain_order=True).agg(pl.col(name))
        new.append(grouped.get_column(name))
    return frame.with_columns(new)


@dataclass(frozen=True, slots=True)
class Site:
    """A place in the user's code."""

    file: str
    line: int
    func: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.func}"

    def to_dict(self) -> dict[str, Any]:
        """The site as the report's JSON object."""
        return {"file": self.file, "line": self.line, "func": self.func}


def site_key(sites: Iterable[Site]) -> tuple[Site, ...]:
    """The distinct sites, sorted: the same for a race seen in either order."""
    return tuple(sorted(set(sites), key=lambda s: (s.file, s.line, s.func)))


#: How many of a finding's variables the JSON report lists (``var_count`` has them all).
MAX_LISTED_VARS = 100

#: How many of the locks its unit held an event of a finding lists, the first by name
#: (``EventRef.lock_count`` has how many there were): a unit holding 1,000 locks at
#: once would make every event of its findings carry 1,000 names.
MAX_LISTED_LOCKS = 20


def listed_locks(locks: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """The locks an event lists (the first ``MAX_LISTED_LOCKS``) and its ``lock_count``
    (how many were held, when that is more; 0 when ``locks`` lists them all)."""
    n = len(locks)
    if n <= MAX_LISTED_LOCKS:
        return tuple(locks), 0
    return tuple(locks[:MAX_LISTED_LOCKS]), n


@dataclass(frozen=True, slots=True)
class EventRef:
    """One recorded event as it takes part in a finding."""

    role: str
    seq: int
    ts: int
    pid: int
    unit: str
    unit_name: str
    op: str
    target: str
    value: str | None
    file: str
    line: int
    func: str
    locks: tuple[str, ...] = ()
    #: The call stack, innermost frame (the site) first; empty when the trace has none.
    stack: tuple[Site, ...] = ()
    #: Where the event's unit was created (thread start, task creation), innermost
    #: first; empty when unknown (the main thread, or a trace without stacks).
    created_at: tuple[Site, ...] = ()
    #: Who created the unit (``thread MainThread``), when known.
    created_by: str = ""
    #: For an event inside an executor job (a thread pool's worker running a submitted
    #: function): the stack of the ``submit`` call, innermost first; else empty.
    submitted_at: tuple[Site, ...] = ()
    #: Who submitted that job (``thread MainThread``), when known.
    submitted_by: str = ""
    #: How many locks the unit held, when ``locks`` lists only the first
    #: ``MAX_LISTED_LOCKS`` of them by name; 0 when ``locks`` lists them all.
    lock_count: int = 0

    @property
    def more_locks(self) -> int:
        """How many held locks ``locks`` leaves out (0 when it lists them all)."""
        return max(0, self.lock_count - len(self.locks))

    @property
    def site(self) -> Site:
        """Where the event happened."""
        return Site(self.file, self.line, self.func)

    @property
    def frames(self) -> tuple[Site, ...]:
        """The call stack to show: the recorded one, else the site alone."""
        return self.stack or (self.site,)

    def to_dict(self) -> dict[str, Any]:
        """The event as the report's JSON object (``docs/report-format.md``)."""
        d = {name: getattr(self, name) for name in EVENT_FIELDS}
        d["locks"] = list(self.locks)
        d["stack"] = [site.to_dict() for site in self.stack]
        d["created_at"] = [site.to_dict() for site in self.created_at]
        d["created_by"] = self.created_by
        d["submitted_at"] = [site.to_dict() for site in self.submitted_at]
        d["submitted_by"] = self.submitted_by
        if self.lock_count:  # only when ``locks`` was cut short
            d["lock_count"] = self.lock_count
        return d


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a trace, grouped over its occurrences.

    Attributes:
        kind: ``lost_update``, ``atomicity_violation``, ``data_race``,
            ``inconsistent_locking``, ``lock_order_inversion`` or ``deadlock``.
        severity: ``error``, ``warning`` or ``note``.
        var: The variable (for lock findings: the locks of the cycle, joined).
        units: The units (threads or tasks) involved, readable names.
        sites: The code sites involved, in the order of the interleaving.
        count: How many times this (kind, var, sites) occurred in the trace.
        events: The first occurrence's events, in order, each with its role.
        worst: The widest occurrence's events (the longest window).
        explanation: One sentence in plain words.
        vars: Every variable of the finding, ``var`` first (after grouping).
        group: The bug's id, shared by a lost update and the races it shows.
        lost_writes: Lost updates: the writes of other units inside its windows, each
            overwritten by a write computed from an older read (the damage).
        var_writes: Lost updates: its variables' writes in the trace (0 if unknown).
    """

    kind: str
    severity: str
    var: str
    units: tuple[str, ...]
    sites: tuple[Site, ...]
    count: int
    events: tuple[EventRef, ...]
    explanation: str
    worst: tuple[EventRef, ...] = ()
    vars: tuple[str, ...] = ()
    group: str = ""
    lost_writes: int = 0
    var_writes: int = 0

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable the finding touched, ``var`` first."""
        return self.vars or (self.var,)

    @property
    def var_count(self) -> int:
        """How many variables the finding touched."""
        return len(self.variables)

    @property
    def fingerprint(self) -> str:
        """A stable id for the finding: same kind and set of code sites, same id.

        The variables are left out (one bug on ``counters[0]`` ... ``counters[9]`` is
        one finding) and so is the order the sites came in.
        """
        key = "\x1f".join(
            [self.kind, *(f"{s.file}:{s.line}:{s.func}" for s in site_key(self.sites))]
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The finding as the report's JSON object (``docs/report-format.md``)."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "var": self.var,
            "units": list(self.units),
            "sites": [s.to_dict() for s in self.sites],
            "count": self.count,
            "events": [e.to_dict() for e in self.events],
            "worst": [e.to_dict() for e in self.worst],
            "explanation": self.explanation,
            "fingerprint": self.fingerprint,
            "vars": list(self.variables[:MAX_LISTED_VARS]),
            "var_count": self.var_count,
            "group": self.group,
            "lost_writes": self.lost_writes,
            "var_writes": self.var_writes,
        }
        return d


def to_findings(frame: pl.DataFrame | Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Turn rows of ``FINDING_SCHEMA`` into ``Finding`` objects.

    Args:
        frame: A collected findings frame, or its rows as dicts.

    Returns:
        The findings, in the frame's order.
    """
    if not isinstance(frame, pl.DataFrame):  # rows as dicts: missing keys are nulls
        rows = list(frame)
        extra = {k: v for k, v in OPTIONAL_FINDING_COLUMNS.items() if any(k in r for r in rows)}
        frame = pl.DataFrame(rows, schema={**FINDING_SCHEMA, **extra})
    with gc_paused():  # thousands of small objects, no cycles
        return _from_frame(frame)


def _from_frame(frame: pl.DataFrame) -> list[Finding]:
    """``to_findings`` of a frame, column by column (a row of nested dicts is slow)."""
    n = frame.height
    if n == 0:
        return []
    events = _event_lists(frame["events"])
    worst = _event_lists(frame["worst"]) if "worst" in frame.columns else [()] * n
    sites = _nested(frame["sites"], _sites)
    return [
        Finding(
            kind=kind,
            severity=severity,
            var=var,
            units=tuple(units or ()),
            sites=site,
            count=count,
            events=ev,
            worst=wo or ev,
            explanation=expl,
            lost_writes=lost or 0,
            var_writes=total or 0,
        )
        for kind, severity, var, units, count, expl, site, ev, wo, lost, total in zip(
            frame["kind"].to_list(),
            frame["severity"].to_list(),
            frame["var"].to_list(),
            frame["units"].to_list(),
            frame["count"].to_list(),
            frame["explanation"].to_list(),
            sites,
            events,
            worst,
            _optional(frame, "lost_writes"),
            _optional(frame, "var_writes"),
            strict=True,
        )
    ]


def _optional(frame: pl.DataFrame, name: str) -> list[Any]:
    """A column that only some analyses give (``None`` per row where it is missing)."""
    return frame[name].to_list() if name in frame.columns else [None] * frame.height


def _nested(column: pl.Series, build: Any) -> list[tuple[Any, ...]]:
    """Per row of a list-of-struct column, a tuple of ``build(flat fields frame)`` items."""
    lens = column.list.len().fill_null(0).to_list()
    flat = (
        column.filter(column.list.len() > 0).explode().struct.unnest()
        if any(lens)
        else pl.DataFrame()
    )
    items = build(flat) if flat.height else []
    out: list[tuple[Any, ...]] = []
    i = 0
    for k in lens:
        out.append(tuple(items[i : i + k]))
        i += k
    return out


def _sites(df: pl.DataFrame) -> list[Site]:
    """The ``Site`` of every row of flat ``SITE_DTYPE`` fields (a field the trace left out
    shows as ``?``, line 0, as in events)."""
    cols = df.select(
        pl.col("file").fill_null("?"), pl.col("line").fill_null(0), pl.col("func").fill_null("?")
    )
    return list(map(Site, *(cols.get_column(c).to_list() for c in cols.columns)))


def _event_lists(column: pl.Series) -> list[tuple[EventRef, ...]]:
    """``_event`` of every event of a list-of-``EVENT_DTYPE`` column, per row."""

    def build(df: pl.DataFrame) -> list[EventRef]:
        cols = df.select(
            pl.col("role").fill_null(""),
            "seq",
            pl.col("ts").fill_null(0),
            pl.col("pid").fill_null(0),
            pl.col("unit").fill_null(""),
            pl.coalesce("unit_name", "unit", pl.lit("")).alias("unit_name"),
            pl.col("op").fill_null(""),
            pl.col("target").fill_null(""),
            "value",
            pl.col("file").fill_null("?"),
            pl.col("line").fill_null(0),
            pl.col("func").fill_null("?"),
            # (the first ``MAX_LISTED_LOCKS``, cut here: Python strings are the cost)
            pl.col("locks")
            .list.head(MAX_LISTED_LOCKS)
            .fill_null(pl.lit([], dtype=pl.List(pl.String))),
            (
                pl.coalesce("lock_count", pl.col("locks").list.len())
                if "lock_count" in df.columns
                else pl.col("locks").list.len()
            )
            .fill_null(0)
            .alias("_n"),
        )
        # column lists zipped: about twice as fast as ``iter_rows`` here
        columns = [cols.get_column(c).to_list() for c in cols.columns]
        return [
            EventRef(
                role,
                seq,
                ts,
                pid,
                unit,
                name,
                op,
                target,
                value,
                file,
                line,
                func,
                (*locks,),
                lock_count=n if n > len(locks) else 0,
            )
            for (role, seq, ts, pid, unit, name, op, target, value, file, line, func, locks, n) in (
                zip(*columns, strict=True)
            )
        ]

    return _nested(column, build)


def window_ns(events: Sequence[EventRef]) -> int:
    """Time from the first to the last event of an instance (0 when unknown)."""
    ts = [e.ts for e in events if e.ts]
    return max(ts) - min(ts) if len(ts) >= 2 else 0


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Order findings for display: worst severity first, then kind, variable, sites."""
    return sorted(
        findings,
        key=lambda f: (severity_rank(f.severity), f.kind, f.var, [str(s) for s in f.sites]),
    )
