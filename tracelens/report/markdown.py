"""The Markdown report: for a pull-request comment (GitHub-flavoured Markdown).

Every string from the trace goes into a code span (``code``), where Markdown and
HTML are not interpreted and GitHub does not turn ``@name`` or ``#12`` into links;
the span's backtick fence is longer than any backtick run inside, and in tables
pipes are escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from tracelens.analyze.findings import ERROR, NOTE, WARNING, Finding, window_ns
from tracelens.report._common import (
    RenderOptions,
    ReportLike,
    bug_note,
    by_variable,
    clean,
    damage_text,
    distinct_sites,
    explanation_text,
    format_duration,
    frame_texts,
    headline,
    is_remote,
    rule_for,
    rule_label,
    site_text,
    stack_sections,
    step_parts,
    summary_int,
    suppressed_by_rule,
    variables_text,
)

_ICON = {ERROR: "🔴", WARNING: "🟠", NOTE: "🔵"}
_BACKTICKS = re.compile(r"`+")


def code(s: str, *, in_table: bool = False) -> str:
    """A trace string as an inline code span that nothing inside can break out of.

    Args:
        s: Untrusted text.
        in_table: The span sits in a table cell (pipes must be escaped there).

    Returns:
        The code span.
    """
    s = clean(s)
    longest = max((len(m) for m in _BACKTICKS.findall(s)), default=0)
    fence = "`" * (longest + 1)
    if s.startswith("`") or s.endswith("`") or not s.strip():
        s = f" {s} "
    if in_table:
        s = s.replace("|", "\\|")
    return f"{fence}{s}{fence}"


def text(s: str) -> str:
    """Untrusted text outside code: Markdown and HTML characters escaped.

    ``@name`` and ``#12`` get a zero-width space after the sign, so GitHub links
    neither a user nor an issue.

    Args:
        s: Untrusted text.

    Returns:
        Text that renders literally.
    """
    out = []
    for ch in clean(s):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch in "@#":
            out.append(ch + "\u200b")
        else:
            out.append(ch)
    return "".join(out)


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_SPECIAL = frozenset("\\`*_[]{}|~!-+.=:")


def render(report: ReportLike, options: RenderOptions | None = None) -> str:
    """Render the report as GitHub-flavoured Markdown.

    Args:
        report: The analysis report.
        options: ``root`` for showing code sites relative to it.

    Returns:
        The Markdown document.
    """
    options = options or RenderOptions()
    root = options.root
    worst = (
        ERROR
        if any(f.severity == ERROR for f in report.findings)
        else (WARNING if report.findings else None)
    )
    icon = _ICON.get(worst, "✅") if worst else "✅"
    lines = [f"### {icon} tracelens: {headline(report)}", ""]
    s = report.summary
    span = summary_int(s, "time_span_ns")
    lines.append(
        f"Analysed {summary_int(s, 'events'):,} events from {summary_int(s, 'files'):,} "
        f"file(s), spanning {format_duration(span)}."
    )
    lines.append("")
    budget = options.max_chars
    tail = _tail(report)
    if report.findings:
        ordered_findings = [f for _var, fs in by_variable(report.findings) for f in fs]
        rows = [_row(f, root) for f in ordered_findings]
        # Blocks are built one by one and only while they fit: thousands of findings under a
        # cap render only the ones shown.
        blocks = ("\n".join(_finding(f.var, f, options, report.findings)) for f in ordered_findings)
        # Room for the table header, the note on what was left out and the tail.
        used = _size(lines) + _size(tail) + len(_TABLE_HEAD) + _NOTE_ROOM
        shown_rows = len(_fit(rows, budget, used))
        used += sum(len(r) + 1 for r in rows[:shown_rows]) + 1
        shown = _fit(blocks, budget, used) if shown_rows == len(rows) else []
        lines += _TABLE_HEAD.splitlines() + rows[:shown_rows]
        if shown_rows < len(rows):
            lines.append(f"| | … | {len(rows) - shown_rows:,} more findings not shown | | | |")
        lines.append("")
        lines += shown
        left = len(rows) - len(shown)
        if left:
            lines += [
                f"_{left:,} of {len(rows):,} findings are not shown in detail: this comment "
                f"is capped at {budget:,} characters. The full report: "
                "`tracelens report TRACE --format markdown --max-chars 0 -o report.md`, "
                "or the JSON and SARIF reports._",
                "",
            ]
    lines += tail
    out = "\n".join(lines) + "\n"
    if budget and len(out) > budget:  # a header alone past the cap: cut it, say so
        cut = "\n\n_(cut at the character limit)_\n"
        out = out[: budget - len(cut)] + cut
    return out


_TABLE_HEAD: Final = "| | Kind | Variable | Sites | Units | Count |\n|---|---|---|---|---|---:|"
#: Characters kept free for the lines that say what was left out.
_NOTE_ROOM: Final = 400


def _size(lines: list[str]) -> int:
    return sum(len(x) + 1 for x in lines)


def _fit(parts: Iterable[str], budget: int | None, used: int) -> list[str]:
    """The first of ``parts`` (joined by newlines) that fit in ``budget`` after ``used``.

    Stops taking from ``parts`` at the first that does not fit.
    """
    if not budget:
        return list(parts)
    fit = []
    for part in parts:
        used += len(part) + 1
        if used > budget:
            break
        fit.append(part)
    return fit


def _row(f: Finding, root: Path | None) -> str:
    sites = "<br>".join(code(site_text(x, root), in_table=True) for x in distinct_sites(f))
    units = ", ".join(code(u, in_table=True) for u in f.units)
    more = f" +{f.var_count - 1:,} more" if f.var_count > 1 else ""
    return (
        f"| {_ICON.get(f.severity, '')} {f.severity} | {code(f.kind, in_table=True)} "
        f"| {code(f.var, in_table=True)}{more} | {sites} | {units} | {f.count:,} |"
    )


def _tail(report: ReportLike) -> list[str]:
    """The suppressions and the footer, which every rendering keeps."""
    lines: list[str] = []
    rules = suppressed_by_rule(report)
    if rules:
        lines += [f"**Suppressed:** {len(report.suppressed):,}", ""]
        for rule, n in rules:
            reason = f": {text(rule['reason'])}" if rule["reason"] else ""
            lines.append(f"- {n:,} by {code(rule_label(_Rule(rule)))}{reason}")
        lines.append("")
    lines.append("<sub>Generated by tracelens.</sub>")
    return lines


class _Rule:
    def __init__(self, d: dict[str, str]) -> None:
        self.__dict__.update(d)


def _finding(
    var: str, f: Finding, options: RenderOptions, findings: Sequence[Finding]
) -> list[str]:
    root = options.root
    rule = rule_for(f.kind)
    out = [
        "<details>",
        # raw HTML block: no Markdown inside, so HTML escaping and <code> (no @-mentions)
        f"<summary>{_ICON.get(f.severity, '')} <b>{html.escape(clean(f.kind))}</b> on "
        f"<code>{html.escape(clean(var))}</code> ({f.count:,} times)</summary>",
        "",
        text(explanation_text(f, root)) if f.explanation else text(rule.short),
        "",
    ]
    many = variables_text(f)
    if many:
        out += [f"On {text(many)}.", ""]
    note = bug_note(f, findings)
    if note:
        out += [f"**{text(note)}**", ""]
    damage = damage_text(f)
    if damage:
        out += [f"**{text(damage)}**", ""]
    for i, e in enumerate(f.events, 1):
        unit, v, target, site = step_parts(e, root)
        who = f"**{code(unit)}**" if is_remote(e) else code(unit)
        more = f" and {e.more_locks} more" if e.more_locks else ""
        held = f" holding {', '.join(code(x) for x in e.locks)}{more}" if e.locks else ""
        out.append(f"{i}. {who} {v} {code(target)} at {code(site)}{held}")
    sections = stack_sections(f, root)
    if sections:  # a raw HTML block: escaped by html.escape, nothing read as Markdown
        out += ["", "<pre>"]
        for heading, frames in sections:
            out.append(html.escape(clean(heading)))
            out += [html.escape(clean(f"   {frame}")) for frame in frame_texts(frames, root)]
        out.append("</pre>")
    span = window_ns(f.worst)
    out.append("")
    extra = f" Widest window: {format_duration(span)}." if span else ""
    out.append(f"_{rule.help}_{extra} Fingerprint: `{f.fingerprint}`")
    out += ["", "</details>", ""]
    return out
