"""The summary header: files, events, units, variables, sync objects, skipped lines, span."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tracelens.report import NO_SHARED_STATE, clean, format_duration, no_shared_state
from tracelens.tui.model import TraceModel


def summary_text(model: TraceModel) -> Text:
    """The two header lines for ``model`` (file names as literal text)."""
    s: dict[str, Any] = model.summary
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" tracelens ", style="bold black on #5fafff")
    text.append(" ")
    names = [str(p) for p in model.paths]
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")
    text.append(clean(shown), style="bold")
    text.append("\n")
    items = [
        ("files", f"{s.get('files', len(names)):,}"),
        ("events", f"{s.get('events', 0):,}"),
        ("units", f"{s.get('units', 0):,}"),
        ("variables", f"{s.get('variables', 0):,}"),
        ("sync objects", f"{s.get('sync_objects', 0):,}"),
        ("skipped", f"{s.get('skipped', 0):,}"),
        ("span", format_duration(s.get("time_span_ns", 0), compact=True)),
    ]
    for i, (label, value) in enumerate(items):
        if i:
            text.append("  │  ", style="#585858")
        text.append(f"{label} ", style="#8a8a8a")
        text.append(value, style="bold")
    text.append("  │  ", style="#585858")
    by_sev = s.get("findings_by_severity", {}) or {}
    n = s.get("findings", 0)
    text.append("findings ", style="#8a8a8a")
    if n is None:
        text.append("analysing…", style="italic #ffaf00")
        return text
    text.append(f"{n:,}", style="bold")
    parts = [(sev, by_sev.get(sev, 0)) for sev in ("error", "warning", "note") if by_sev.get(sev)]
    if parts:
        text.append(" (")
        for i, (sev, k) in enumerate(parts):
            if i:
                text.append(", ")
            text.append(f"{k} {sev}", style=SEVERITY_STYLES.get(sev, ""))
        text.append(")")
    if no_shared_state(s):
        text.append("  │  ", style="#585858")
        text.append(NO_SHARED_STATE, style="bold #ffaf00")
    return text


SEVERITY_STYLES = {"error": "bold #ff5f5f", "warning": "bold #ffaf00", "note": "#87afd7"}


class SummaryBar(Static):
    """Two lines at the top: the files and the trace's numbers."""

    DEFAULT_CSS = """
    SummaryBar { height: 2; background: $panel; padding: 0 0; }
    """

    def __init__(self, model: TraceModel, *, id: str | None = None) -> None:
        super().__init__(summary_text(model), id=id, markup=False)
        self.model = model
