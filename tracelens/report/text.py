"""The text report (the default format): for people at a terminal.

A summary line, then the findings grouped by variable; each finding shows its code
sites, its units, how often it occurred and the interleaving as numbered steps,
followed by its explanation. Built with rich ``Text`` objects only, so nothing from
the trace is ever interpreted as console markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.text import Text

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
    held_text,
    is_remote,
    plural,
    rule_for,
    rule_label,
    site_text,
    stack_sections,
    step_parts,
    suppressed_by_rule,
    unused_suppressions,
    variables_text,
)

_SEVERITY_STYLE = {ERROR: "bold red", WARNING: "bold yellow", NOTE: "bold blue"}


def render(report: ReportLike, options: RenderOptions | None = None) -> str:
    """Render the report as text.

    Args:
        report: The analysis report.
        options: ``color`` for terminal colours, ``width`` for the line width, ``root``
            for showing code sites relative to it.

    Returns:
        The report, ending with a newline; plain text unless ``options.color``.
    """
    options = options or RenderOptions()
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=options.width or 100,
        force_terminal=options.color,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )
    for renderable in renderables(report, options):
        console.print(renderable)
    out = buf.getvalue()
    if not options.color:  # rich pads wrapped lines; plain text has no use for that
        out = "\n".join(line.rstrip() for line in out.split("\n"))
    return out


def renderables(report: ReportLike, options: RenderOptions | None = None) -> list[RenderableType]:
    """The report as rich renderables (for printing straight to a console).

    Args:
        report: The analysis report.
        options: See ``render``.

    Returns:
        A list of renderables, printed one after the other.
    """
    options = options or RenderOptions()
    out: list[RenderableType] = []
    worst = "bold red" if any(f.severity == ERROR for f in report.findings) else "bold green"
    head = Text("tracelens: ", style="bold")
    head.append(clean(headline(report)), style=worst if report.findings else "green")
    out.append(head)
    if options.max_findings == 0:  # --quiet: the summary line alone
        return out
    left = len(report.findings) if options.max_findings is None else options.max_findings
    for var, findings in by_variable(report.findings):
        if left <= 0:
            break
        shown = findings[:left]
        left -= len(shown)
        out.append(Text(""))
        title = Text(clean(var), style="bold underline")
        title.append(f"  ({len(findings)} finding{'s' if len(findings) != 1 else ''})", "dim")
        out.append(title)
        for f in shown:
            out.extend(_finding(f, options, report.findings))
    hidden = len(report.findings) - (
        len(report.findings) if options.max_findings is None else options.max_findings
    )
    if hidden > 0:
        out.append(Text(""))
        out.append(
            Text(
                f"... {plural(hidden, 'more finding')} not shown (--max-findings)",
                "dim",
            )
        )
    rules = suppressed_by_rule(report)
    if rules:
        out.append(Text(""))
        out.append(Text(f"Suppressed ({len(report.suppressed):,}):", style="bold"))
        for rule, n in rules:
            line = Text(f"{n:,} by ", "dim")
            line.append(clean(rule_label(_Rule(rule))))
            if rule["reason"]:
                line.append(f" ({clean(rule['reason'])})", "dim")
            out.append(_indent(line, 2))
    unused = unused_suppressions(report)
    if unused:
        out.append(Text(""))
        out.append(Text(f"Unused suppressions ({len(unused):,}): they matched nothing", "bold"))
        for r in unused:
            line = Text(clean(rule_label(r)))
            src = getattr(r, "source", None)
            if src:
                line.append(f"  ({clean(src)})", "dim")
            out.append(_indent(line, 2))
    return out


class _Rule:
    def __init__(self, d: dict[str, str]) -> None:
        self.__dict__.update(d)


def _indent(text: Text, n: int) -> Padding:
    """``text`` indented by ``n``; wrapped lines keep the indent, no trailing blanks."""
    return Padding(text, (0, 0, 0, n), expand=False)


def _finding(f: Finding, options: RenderOptions, findings: Sequence[Finding]) -> list[Padding]:
    root = options.root
    lines: list[Padding] = []
    head = Text()
    head.append(f.severity.upper(), _SEVERITY_STYLE.get(f.severity, "bold"))
    head.append(" ")
    head.append(clean(f.kind), "bold")
    head.append(f"  x{f.count:,}", "cyan")
    head.append("  ")
    head.append(clean(", ".join(f.units)), "magenta")
    lines.append(_indent(head, 2))
    sites = Text()
    for i, s in enumerate(distinct_sites(f)):
        if i:
            sites.append("  ->  ", "dim")
        sites.append(clean(site_text(s, root)), "cyan")
        sites.append(f" in {clean(s.func)}", "dim")
    lines.append(_indent(sites, 4))
    many = variables_text(f)
    if many:
        lines.append(_indent(Text("on " + clean(many), "dim"), 4))
    for i, e in enumerate(f.events, 1):
        unit, v, target, site = step_parts(e, root)
        line = Text(f"{i}. ", "dim")
        line.append(clean(unit), "bold magenta" if is_remote(e) else "magenta")
        line.append(f" {v} ")
        line.append(clean(target), "bold" if is_remote(e) else "")
        line.append(" at ", "dim")
        line.append(clean(site), "cyan")
        if e.locks:
            line.append(f" holding {clean(held_text(e))}", "dim")
        if e.role:
            line.append(f"  ({clean(e.role)})", "dim")
        lines.append(_indent(line, 4))
    for heading, frames in stack_sections(f, root):
        lines.append(_indent(Text(clean(heading), "dim"), 4))
        for frame in frame_texts(frames, root):
            lines.append(_indent(Text(clean(frame), "cyan"), 7))
    if f.explanation:
        lines.append(_indent(Text(clean(explanation_text(f, root)), "italic"), 4))
    span = window_ns(f.worst)
    if f.count > 1 and span and f.worst != f.events:
        lines.append(_indent(Text(f"widest window: {format_duration(span)}", "dim"), 4))
    note = bug_note(f, findings)
    if note:
        lines.append(_indent(Text(note, "bold"), 4))
    damage = damage_text(f)
    if damage:
        lines.append(_indent(Text(clean(damage), "bold red"), 4))
    lines.append(_indent(Text("fix: " + rule_for(f.kind).help, "green"), 4))
    return lines
