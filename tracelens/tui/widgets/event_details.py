"""Details of the selected event: seq, time, unit, task, value, call site, locks held."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tracelens.report import clean, format_duration
from tracelens.tui.model import Timeline, site_text


def details_text(tl: Timeline, row: int, role: str | None = None) -> Text:
    """The details of event ``row`` of ``tl`` as literal text."""
    ev: dict[str, Any] = tl.event(row)
    text = Text(no_wrap=False)

    def line(label: str, value: str, style: str = "") -> None:
        text.append(f"{label:>7} ", style="#8a8a8a")
        text.append(clean(value), style=style)
        text.append("\n")

    op = ev.get("op") or "?"
    op_style = {"write": "bold #ffaf00", "read": "bold #5fd7ff"}.get(op, "bold #af87ff")
    text.append(f"{'event':>7} ", style="#8a8a8a")
    text.append(clean(op), style=op_style)
    target = ev.get("var") or ev.get("obj")
    if target:
        text.append(" ")
        text.append(clean(str(target)), style="bold")
    text.append("\n")
    if role:
        line("role", role, "bold #ff5f5f" if "remote" in role else "bold #ffaf00")
    line("seq", f"{ev.get('seq')}" + (f"  (pid {ev.get('pid')})" if ev.get("pid") else ""))
    ts = ev.get("ts")
    line(
        "time",
        f"+{format_duration((ts or tl.t0) - tl.t0, compact=True)}"
        + (f"  (ts {ts})" if ts is not None else ""),
    )
    unit = str(ev.get("unit") or "?")
    name = ev.get("unit_name")
    line("unit", unit + (f"  {name}" if name and name != unit else ""))
    line("thread", str(ev.get("thread") or "-"))
    line("task", str(ev.get("task") or "-"))
    value = ev.get("value")
    line("value", "-" if value is None else str(value), "bold")
    line("site", site_text(ev.get("file"), ev.get("line"), ev.get("func")))
    locks = tl.locks_held(row)
    line("locks", ", ".join(locks) if locks else "none held", "#87d787" if locks else "#8a8a8a")
    text.rstrip()
    return text


class EventDetails(Static):
    """The selected event, field by field (everything from the trace is literal)."""

    DEFAULT_CSS = """
    EventDetails { height: auto; }
    """

    def show(self, tl: Timeline, row: int, role: str | None = None) -> None:
        """Show event ``row`` of ``tl``."""
        self.update(details_text(tl, row, role))
