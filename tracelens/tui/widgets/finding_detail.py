"""A preview of the highlighted finding: its explanation, sites, events and stacks."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from tracelens.analyze.findings import Finding
from tracelens.report import (
    bug_note,
    clean,
    damage_text,
    explanation_text,
    format_duration,
    frame_texts,
    held_text,
    stack_sections,
    variables_text,
)
from tracelens.tui.model import site_text
from tracelens.tui.widgets.summary import SEVERITY_STYLES


def finding_text(f: Finding, findings: Sequence[Finding] = ()) -> Text:
    """What the preview pane shows for ``f`` (trace strings literal); ``findings``, all
    of them, for how ``f`` relates to the others of its bug."""
    text = Text()
    text.append(f.severity, style=SEVERITY_STYLES.get(f.severity, "bold"))
    text.append(" ")
    text.append(clean(f.kind), style="bold")
    text.append(" on ")
    text.append(clean(f.var), style="bold #5fd7ff")
    text.append(f"  {f.count:,} times\n", style="#8a8a8a")
    many = variables_text(f)
    if many:
        text.append("on " + clean(many) + "\n", style="#8a8a8a")
    text.append(clean(explanation_text(f)))
    text.append("\n")
    for line, style in ((bug_note(f, findings), "bold"), (damage_text(f), "bold #ff5f5f")):
        if line:
            text.append(clean(line) + "\n", style=style)
    t0 = f.events[0].ts if f.events else 0
    for e in f.events:
        text.append(
            f"  {clean(e.role):<16}", style="bold #ff5f5f" if "remote" in e.role else "#ffaf00"
        )
        text.append(f" {clean(e.op):<6} ", style="bold")
        text.append(clean(e.unit_name or e.unit))
        text.append(
            f"  seq {e.seq}  +{format_duration(e.ts - t0, compact=True)}  ", style="#8a8a8a"
        )
        text.append(site_text(e.file, e.line, e.func), style="#87afd7")
        if e.locks:
            text.append("  holding ", style="#8a8a8a")
            text.append(clean(held_text(e)), style="#87d787")
        if e.value is not None:
            text.append("  value ", style="#8a8a8a")
            text.append(clean(str(e.value)))
        text.append("\n")
    for heading, frames in stack_sections(f):
        text.append("  " + clean(heading) + "\n", style="#8a8a8a")
        for frame in frame_texts(frames):
            text.append("     " + clean(frame) + "\n", style="#87afd7")
    text.rstrip()
    return text


class FindingDetail(Static):
    """The finding under the cursor of the findings table."""

    DEFAULT_CSS = """
    FindingDetail { height: auto; max-height: 20; }
    """

    def show(self, finding: Finding | None, findings: Sequence[Finding] = ()) -> None:
        """Show ``finding`` (or nothing), among ``findings``."""
        self.update(
            finding_text(finding, findings)
            if finding
            else Text("no finding selected", style="italic #8a8a8a")
        )
