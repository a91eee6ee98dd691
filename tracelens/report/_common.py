"""What every renderer shares: the report protocol, the rule catalogue and wording.

Renderers see a report only through ``ReportLike`` (findings, summary, suppressed)
and the ``Finding`` model; they never look at the trace or know how a finding was
computed. Every string that comes from the trace (variable names, unit names, file
names, values) is untrusted: each renderer escapes it for its own output format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final, Protocol

from tracelens.analyze.columns import unit_word
from tracelens.analyze.findings import (
    ERROR,
    NOTE,
    SEVERITIES,
    WARNING,
    EventRef,
    Finding,
    Site,
    sort_findings,
)
from tracelens.analyze.kinds import KINDS, KindInfo, kind_info

TOOL_NAME = "tracelens"
#: Where SARIF consumers send people who want to know more about the tool.
TOOL_URI = "https://pypi.org/project/tracelens/"


def tool_version() -> str:
    """The installed tracelens version."""
    from tracelens import __version__

    return __version__


#: The most characters a GitHub comment may hold: the Markdown report's default cap.
GITHUB_COMMENT_LIMIT: Final = 65_536


class ReportLike(Protocol):
    """What a renderer needs of ``tracelens.analyze.Report``."""

    findings: Sequence[Finding]
    summary: Mapping[str, Any]
    suppressed: Sequence[tuple[Finding, Any]]


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render, beyond the report itself.

    Attributes:
        root: Directory that code sites are shown relative to (the repository or the
            working directory); ``None`` means the current working directory.
        color: Emit terminal colours (text format only).
        width: Line width for the text format; ``None`` means 100.
        max_chars: The Markdown report's cap in characters (a GitHub comment holds
            65,536); ``None`` or 0 for none.
        max_findings: The text report shows at most this many findings (``None``: all).
    """

    root: Path | None = None
    color: bool = False
    width: int | None = None
    max_chars: int | None = GITHUB_COMMENT_LIMIT
    max_findings: int | None = None


#: A finding kind's catalogue entry, in the words renderers show (``id``, ``name``,
#: ``short``, ``full``, ``help``; ``severity`` is the SARIF rule's level).
Rule = KindInfo

#: The rules of the known kinds, in catalogue order.
RULES: dict[str, Rule] = dict(KINDS)


def rule_for(kind: str) -> Rule:
    """The rule of a finding kind; an unknown kind gets a generic rule."""
    return kind_info(kind)


def display_path(file: str, root: Path | None = None) -> str:
    """A code site's file as people want to read it: relative to ``root`` when inside.

    Args:
        file: The file as recorded (usually absolute).
        root: The directory to make it relative to; defaults to the working directory.

    Returns:
        The relative path with ``/`` separators, or the file unchanged when it lies
        outside ``root`` (or is not a path at all, like ``<stdin>``).
    """
    rel = relative_path(file, root)
    return rel if rel is not None else file


def relative_path(file: str, root: Path | None = None) -> str | None:
    """``file`` relative to ``root`` with ``/`` separators, or ``None`` when outside."""
    if not file or file.startswith("<") or not os.path.isabs(file):
        return None
    base = os.path.abspath(root if root is not None else os.getcwd())
    try:
        rel = os.path.relpath(os.path.abspath(file), base)
    except ValueError:  # another drive on Windows
        return None
    if rel == os.curdir or rel.startswith(os.pardir):
        return None
    return PurePosixPath(*Path(rel).parts).as_posix()


def site_text(site: Site | EventRef, root: Path | None = None) -> str:
    """``file:line`` of a site or event, the file shown relative to ``root``."""
    return f"{display_path(site.file, root)}:{site.line}"


_VERBS = {
    "read": "reads",
    "write": "writes",
    "acquire_try": "tries to acquire",
    "acquire": "acquires",
    "acquire_fail": "fails to acquire",
    "release": "releases",
    "fork": "starts",
    "begin": "begins",
    "end": "ends",
    "join": "joins",
    "send": "signals",
    "recv": "receives from",
    "wait": "waits for",
    "atomic_begin": "enters atomic region",
    "atomic_end": "leaves atomic region",
}


def verb(op: str) -> str:
    """The operation as a verb in the third person (``read`` -> ``reads``)."""
    return _VERBS.get(op, op)


def step_parts(e: EventRef, root: Path | None = None) -> tuple[str, str, str, str]:
    """One interleaving step split into (unit, verb, target with value, site).

    Each renderer joins and escapes the parts in its own way.

    Args:
        e: The event.
        root: Directory to show the site relative to.

    Returns:
        ``(unit_name, verb, target, site)``, e.g. ``("Thread-1", "reads",
        "model['weight'] = 1.0", "app.py:12")``.
    """
    target = e.target
    if e.value is not None and e.op in ("read", "write"):
        target = f"{target} = {e.value}"
    return (e.unit_name or e.unit, verb(e.op), target, site_text(e, root))


def held_text(e: EventRef) -> str:
    """The locks an event's unit held, joined, and how many it held beyond those listed
    (``MAX_LISTED_LOCKS``): ``"A, B and 980 more"``; not escaped."""
    more = f" and {e.more_locks} more" if e.more_locks else ""
    return ", ".join(e.locks) + more


def step_text(e: EventRef, root: Path | None = None) -> str:
    """One interleaving step as plain text (``Thread-1 reads x = 1 at app.py:12``)."""
    unit, v, target, site = step_parts(e, root)
    return f"{unit} {v} {target} at {site}"


def explanation_text(f: Finding, root: Path | None = None) -> str:
    """A finding's explanation with its files shown as its sites are (relative to ``root``).

    The analyses name code sites in their sentences as ``file:line`` with the file as
    recorded; each file of the finding's sites, events and stacks is replaced there by
    its ``display_path``, longest first (so that no file is replaced inside another).
    """
    files = {s.file for s in f.sites}
    for e in (*f.events, *f.worst):
        files.add(e.file)
        files.update(s.file for s in (*e.stack, *e.created_at, *e.submitted_at))
    text = f.explanation
    for file in sorted(files, key=len, reverse=True):
        shown = display_path(file, root)
        if file and shown != file:
            text = text.replace(file + ":", shown + ":")
    return text


def frame_texts(frames: Sequence[Site], root: Path | None = None) -> list[str]:
    """A call stack as ThreadSanitizer prints it: ``#0 func file:line``, innermost first."""
    return [f"#{i} {s.func} {site_text(s, root)}" for i, s in enumerate(frames)]


def stack_sections(f: Finding, root: Path | None = None) -> list[tuple[str, tuple[Site, ...]]]:
    """The stacks a finding shows, as (heading, frames innermost first), unescaped.

    First each step of the first instance whose call stack says more than its site
    (``2. Thread-1 reads x at:``), then where each unit of the steps was created, once
    per unit, as ThreadSanitizer does (``Thread Thread-1 created by thread MainThread
    at:``), each followed, for a step inside an executor job, by where that job was
    submitted, once per job (``Job on thread ThreadPoolExecutor-0_1 submitted by thread
    MainThread at:``). Empty for a trace recorded without stacks or with depth 1 and
    no thread pool.
    """
    out: list[tuple[str, tuple[Site, ...]]] = []
    for i, e in enumerate(f.events, 1):
        if len(e.stack) > 1:
            unit, v, _target, _site = step_parts(e, root)
            out.append((f"{i}. {unit} {v} {e.target} at:", e.stack))
    seen: set[str] = set()
    jobs: set[tuple[str, tuple[Site, ...], str]] = set()
    for e in f.events:
        word = unit_word(e.unit)
        if e.created_at and e.unit not in seen:
            seen.add(e.unit)
            by = f" by {e.created_by}" if e.created_by else ""
            out.append(
                (f"{word.capitalize()} {e.unit_name or e.unit} created{by} at:", e.created_at)
            )
        job = (e.unit, e.submitted_at, e.submitted_by)
        if e.submitted_at and job not in jobs:
            jobs.add(job)
            by = f" by {e.submitted_by}" if e.submitted_by else ""
            out.append((f"Job on {word} {e.unit_name or e.unit} submitted{by} at:", e.submitted_at))
    return out


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x09: " ", 0x0A: " ", 0x0D: " "})
# Bidirectional overrides and isolates reorder what a reader sees ("Trojan Source").
_CONTROL.update(
    {c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


def clean(s: str) -> str:
    """A trace string made safe for a terminal: control characters become ``\\xNN``.

    Escape sequences in a variable name or value must not move the cursor or
    recolour a reader's terminal, nor bidirectional controls reorder the text it
    shows (they become ``\\u202e``); tabs and newlines become spaces.
    """
    return s.translate(_CONTROL)


def is_remote(e: EventRef) -> bool:
    """Whether the event is the other unit's access in a window (its role says so)."""
    return e.role.startswith("remote")


def distinct_sites(f: Finding) -> list[Site]:
    """A finding's sites without repeats, in interleaving order."""
    seen: list[Site] = []
    for s in f.sites:
        if s not in seen:
            seen.append(s)
    return seen


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in display order (worst severity first)."""
    return sort_findings(findings)


def by_variable(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by variable, the group with the worst finding first.

    Within a variable, the findings of one bug (``Finding.group``) come together: the
    races first, then what they did in this run (a lost update).
    """
    groups: dict[str, list[Finding]] = {}
    for f in ordered(findings):
        groups.setdefault(f.var, []).append(f)
    out = []
    for var, fs in groups.items():
        first: dict[str, int] = {}
        for i, f in enumerate(fs):
            first.setdefault(f.group, i)
        out.append((var, sorted(fs, key=lambda f: (first[f.group], f.kind in EFFECT_KINDS))))
    return out


#: Kinds that say what a race did in this run (they share a bug's group with its races).
EFFECT_KINDS: Final = frozenset({"lost_update", "atomicity_violation"})

#: How many variable names a rendered finding lists before it says how many more.
SHOWN_VARS: Final = 3


def variables_text(f: Finding) -> str:
    """The variables of a finding touching several: a few names and how many.

    Example: ``counters[0], counters[1], counters[2] … counters[9] (10 variables)``;
    the empty string when the finding touched one variable.
    """
    names = f.variables
    if len(names) <= 1:
        return ""
    shown = ", ".join(names[:SHOWN_VARS])
    if len(names) > SHOWN_VARS + 1:
        shown += f" \u2026 {names[-1]}"
    elif len(names) == SHOWN_VARS + 1:
        shown += f", {names[-1]}"
    return f"{shown} ({len(names):,} variables)"


def damage_text(f: Finding) -> str:
    """What a lost update cost this run, e.g. ``7,590 of 10,000 writes to x lost
    (the final value holds 2,410 updates)``; ``""`` when not known."""
    if not f.lost_writes or not f.var_writes:
        return ""
    kept = f.var_writes - f.lost_writes
    where = f.var if f.var_count == 1 else f"its {f.var_count:,} variables"
    return (
        f"In this run {f.lost_writes:,} of {f.var_writes:,} writes to {where} were lost: "
        f"the final value holds {plural(kept, 'update')}."
    )


def bug_note(f: Finding, findings: Sequence[Finding]) -> str:
    """How a finding relates to the others of its bug, or ``""`` when it is alone."""
    others = [o for o in findings if f.group and o.group == f.group and o is not f]
    if not others:
        return ""
    if f.kind in EFFECT_KINDS:
        kinds = sorted({o.kind.replace("_", " ") for o in others})
        return f"What the {' and '.join(kinds)} above did in this run (bug {f.group})."
    effects = sorted({o.kind.replace("_", " ") for o in others if o.kind in EFFECT_KINDS})
    if effects:
        return f"Bug {f.group}: the {' and '.join(effects)} below is what it did in this run."
    return f"Bug {f.group}."


def counts_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each severity, every severity present (maybe zero)."""
    out = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 error``, ``2 errors``; numbers with thousands separators."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def rule_dict(rule: Any) -> dict[str, str]:
    """A suppression rule as a JSON-ready dict (kind, var, site, reason, source).

    Parts the rule leaves open are empty strings; ``source`` says where it was
    read (``pyproject.toml#2`` for the second rule there).
    """
    keys = ("kind", "var", "site", "reason", "source")
    return {k: str(getattr(rule, k, "") or "") for k in keys}


def rule_label(rule: Any) -> str:
    """A suppression rule in one line: ``kind var at site``, each part only if set."""
    d = rule_dict(rule)
    parts = [d["kind"] or "*", d["var"] or "*"]
    if d["site"]:
        parts.append(f"at {d['site']}")
    if d["source"]:
        parts.append(f"[{d['source']}]")
    return " ".join(parts)


def suppressed_by_rule(report: ReportLike) -> list[tuple[dict[str, str], int]]:
    """Suppressed findings counted per rule, in the order rules first matched.

    Args:
        report: The report.

    Returns:
        ``(rule as dict, number of findings it suppressed)`` pairs.
    """
    counts: dict[tuple[str, ...], tuple[dict[str, str], int]] = {}
    for _finding, rule in report.suppressed:
        d = rule_dict(rule)
        key = tuple(d.values())
        prev = counts.get(key, (d, 0))
        counts[key] = (d, prev[1] + 1)
    return list(counts.values())


def unused_suppressions(report: ReportLike) -> Sequence[Any]:
    """The suppression rules that matched no finding (none for a report without them)."""
    return getattr(report, "unused_suppressions", ())


def summary_int(summary: Mapping[str, Any], key: str) -> int:
    """An integer summary field, 0 when missing or null."""
    v = summary.get(key)
    return int(v) if isinstance(v, int | float) else 0


def skipped_lines(summary: Mapping[str, Any]) -> int:
    """Lines of the input that are not tracelens events (application and malformed)."""
    if "skipped" in summary and summary["skipped"] is not None:
        return summary_int(summary, "skipped")
    return summary_int(summary, "app_lines") + summary_int(summary, "malformed")


#: What a report says when the trace holds no access to shared state.
NO_SHARED_STATE: Final = (
    "no shared state was recorded, so no race could be looked for: record with "
    "`tracelens run` (it records the program's own code), add packages with "
    "--instrument PATTERN, or watch() the shared objects"
)


def no_shared_state(summary: Mapping[str, Any]) -> bool:
    """Whether a report's trace (its ``summary``) has events but not one read or write
    of a variable."""
    return summary_int(summary, "events") > 0 and summary_int(summary, "variables") == 0


def headline(report: ReportLike) -> str:
    """The one-line summary every format starts with.

    Example: ``2 errors, 1 warning (2 bugs) in 12,345 events (4 units, 3 variables,
    1 file); 10 lines skipped; 1 suppressed`` (the bugs are said when fewer than the
    findings: the findings of one ``group``).
    """
    c = counts_by_severity(report.findings)
    s = report.summary
    if report.findings:
        names = {ERROR: "error", WARNING: "warning", NOTE: "note"}
        head = ", ".join(plural(c[k], names.get(k, k)) for k in c if c[k])
        bugs = len({f.group or id(f) for f in report.findings})
        if bugs < len(report.findings):
            head += f" ({plural(bugs, 'bug')})"
    else:
        head = "no findings"
    text = (
        f"{head} in {plural(summary_int(s, 'events'), 'event')} "
        f"({plural(summary_int(s, 'units'), 'unit')}, "
        f"{plural(summary_int(s, 'variables'), 'variable')}, "
        f"{plural(summary_int(s, 'files'), 'file')})"
    )
    known = summary_int(s, "baseline_known")
    if known:
        text += f"; {plural(known, 'known finding')} left out (baseline)"
    if no_shared_state(s):
        text += f"; {NO_SHARED_STATE}"
    skipped = skipped_lines(s)
    if skipped:
        text += f"; {plural(skipped, 'line')} skipped"
    if report.suppressed:
        text += f"; {len(report.suppressed):,} suppressed"
    return text


def format_duration(ns: int | float | None, *, compact: bool = False) -> str:
    """A duration in nanoseconds, in the largest fitting unit.

    Args:
        ns: The duration; ``None`` when unknown.
        compact: For narrow columns (the TUI): no space before the unit (``1.5ms``),
            four significant digits for seconds, ``-`` when unknown. Otherwise, for
            reports: ``1.5 ms``, three digits, ``?`` when unknown.
    """
    if ns is None:
        return "-" if compact else "?"
    v = float(ns)
    sep = "" if compact else " "
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(v) >= scale:
            digits = 4 if compact and unit == "s" else 3
            return f"{v / scale:.{digits}g}{sep}{unit}"
    return f"{v:.0f}{sep}ns"


def json_document(doc: Any) -> str:
    """``doc`` as indented JSON text ending with a newline: the JSON and SARIF reports.

    Rendered by orjson (about ten times faster than ``json.dumps`` on a large report),
    byte for byte what ``json.dumps(doc, indent=2, ensure_ascii=False, default=str)``
    gives for every document whose floats print the same in both (no exponents, no
    NaN or infinity), whose ints fit in 64 bits and whose keys are strings; any other
    document is rendered by ``json`` itself, so the output never depends on which.
    """
    import orjson

    if not _plain_floats(doc):
        return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode() + "\n"
    except TypeError:  # a huge int or a non-string key: json handles them
        return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _plain_floats(doc: Any) -> bool:
    """Whether every float in ``doc`` prints the same in ``json`` and orjson."""
    stack = [doc]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is dict:
            stack.extend(x.values())
        elif t is list or t is tuple:
            stack.extend(x)
        elif t is float and not ("e" not in (r := repr(x)) and r not in ("nan", "inf", "-inf")):
            return False
    return True
