"""The timeline screen: one variable's lanes, the selected event's details and its code."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tracelens.analyze.findings import Finding
from tracelens.report import clean, explanation_text
from tracelens.tui.messages import EventSelected
from tracelens.tui.model import Axis, TraceModel, parse_duration
from tracelens.tui.widgets.event_details import EventDetails
from tracelens.tui.widgets.source import SourcePane
from tracelens.tui.widgets.summary import SEVERITY_STYLES
from tracelens.tui.widgets.timeline import TimelineView


def legend_text(view: TimelineView) -> Text:
    """The marks' meaning, the axis and the zoom."""
    t = Text(no_wrap=True, overflow="ellipsis")
    for mark, style, label in (
        ("○", "#5fd7ff", "read"),
        ("●", "bold #ffaf00", "write"),
        ("━", "#875f00", "read-modify-write"),
        ("  ", "on #14331f", "lock held"),
        (" ● ", "bold black on #ffaf00", "racing pair"),
        (" ● ", "bold white on #d70000", "remote access"),
        ("◆", "#af87ff", "other"),
    ):
        t.append(mark, style=style)
        t.append(f" {label}   ", style="#8a8a8a")
    t.append("│ ", style="#585858")
    t.append("x: event order" if view.axis is Axis.ORDER else "x: time", style="bold")
    t.append(f" · {view.scale_text()}", style="#8a8a8a")
    return t


class TimelineScreen(Screen[None]):
    """A variable's timeline, opened from a finding or from the variables table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("g", "goto", "Go to time"),
    ]

    def __init__(self, model: TraceModel, var: str, *, finding: Finding | None = None) -> None:
        super().__init__()
        self.model = model
        self.var = var
        self.finding = finding
        self.timeline = model.timeline(var)

    def compose(self) -> ComposeResult:
        """Title, finding line, lanes, legend, details and source, search box, footer."""
        yield Static(id="tl-title", markup=False)
        yield Static(id="tl-finding", markup=False)
        yield TimelineView(self.timeline, id="timeline")
        yield Static(id="tl-legend", markup=False)
        with Horizontal(id="tl-bottom"):
            with Vertical(id="tl-details-box"):
                yield EventDetails(id="tl-details", markup=False)
            search = [p.parent for p in self.model.paths]
            extra = list(getattr(self.app, "source_roots", ()))
            roots = [*extra, Path.cwd(), *search] if extra else None
            yield SourcePane(id="tl-source", search=search, roots=roots)
        yield Input(
            placeholder="search events: value, unit, file, function, seq…",
            id="tl-search",
            compact=True,
        )
        yield Footer()

    def on_mount(self) -> None:
        """Select the finding's events (or the first event) and focus the lanes."""
        view = self.query_one(TimelineView)
        self.query_one("#tl-details-box").border_title = "event"
        self.query_one("#tl-search").display = False
        self._title()
        # lanes take what they need (up to half the screen); the code gets the rest
        view.styles.height = f"{min(len(self.timeline.lanes), 40) + 3}"
        view.styles.max_height = "60%"
        view.focus()
        if not len(self.timeline):
            return
        index = None
        if self.finding is not None:
            index = next(
                (
                    i
                    for i, inst in enumerate(self.timeline.instances)
                    if inst.finding is self.finding
                ),
                None,
            )
        if index is not None:
            self.call_after_refresh(view.show_instance, index)
        else:
            self.call_after_refresh(view.select_row, 0)

    def _title(self) -> None:
        tl = self.timeline
        view = self.query_one(TimelineView)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(" timeline ", style="bold black on #5fafff")
        title.append(" ")
        title.append(clean(self.var), style="bold #5fd7ff")
        reads = sum(lane.reads for lane in tl.lanes)
        writes = sum(lane.writes for lane in tl.lanes)
        title.append(
            f"   {len(tl.lanes)} units · {reads:,} reads · {writes:,} writes", style="#8a8a8a"
        )
        n = len(tl.instances)
        nf = len({id(i.finding) for i in tl.instances})
        title.append(f" · {nf} finding{'s' if nf != 1 else ''}", style="#8a8a8a")
        self.query_one("#tl-title", Static).update(title)
        line = Text(no_wrap=False)
        if view.instance is not None and n:
            inst = tl.instances[view.instance]
            f = inst.finding
            line.append(f"[{view.instance + 1}/{n}] ", style="bold")
            line.append(f.severity, style=SEVERITY_STYLES.get(f.severity, "bold"))
            line.append(f" {clean(f.kind)}", style="bold")
            plural = "s" if f.count != 1 else ""
            line.append(
                f" · {clean(inst.label)} of {f.count:,} occurrence{plural} · ", style="#8a8a8a"
            )
            line.append(clean(explanation_text(f)))
        elif n:
            line.append(
                f"{n} finding occurrence(s) on this variable: press n to step through them",
                style="#8a8a8a",
            )
        else:
            line.append("no findings on this variable", style="#8a8a8a")
        self.query_one("#tl-finding", Static).update(line)

    def on_event_selected(self, message: EventSelected) -> None:
        """Show the selected event's details and code."""
        view = self.query_one(TimelineView)
        role = view._roles.get(message.row)
        self.query_one(EventDetails).show(self.timeline, message.row, role)
        ev = self.timeline.event(message.row)
        self.query_one(SourcePane).show(ev.get("file"), ev.get("line"))
        self.query_one("#tl-legend", Static).update(legend_text(view))
        self.query_one("#tl-details-box").border_title = Content(
            f"event {message.row + 1:,} of {len(self.timeline):,}"
        )
        self._title()

    # actions ---------------------------------------------------------------------------
    def action_back(self) -> None:
        """Close the search box, or go back to the tables."""
        search = self.query_one("#tl-search", Input)
        if search.display:
            search.display = False
            self.query_one(TimelineView).focus()
            return
        self.dismiss()

    def action_search(self) -> None:
        """Open the search box."""
        search = self.query_one("#tl-search", Input)
        search.display = True
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Jump to the next event matching the search."""
        if event.input.id != "tl-search" or not event.value.strip():
            return
        view = self.query_one(TimelineView)
        row = self.timeline.search(event.value.strip(), view.selected)
        if row is None:
            self.notify(
                f"no event matches {event.value.strip()!r}",
                severity="warning",
                markup=False,
                timeout=3,
            )
            return
        view.select_row(row)

    def action_goto(self) -> None:
        """Ask for a time or a sequence number and jump there."""
        from tracelens.tui.screens.goto import GotoScreen

        def done(answer: str | None) -> None:
            if not answer:
                return
            view = self.query_one(TimelineView)
            if answer.startswith("#"):
                try:
                    seq = int(answer[1:].replace(",", "").replace("_", ""))
                except ValueError:
                    self.notify("a sequence number is #1234", severity="warning", timeout=3)
                    return
                view.select_row(self.timeline.seq_row(seq))
                return
            ns = parse_duration(answer)
            if ns is None:
                self.notify("times look like 1.5ms, 200us, 3s", severity="warning", timeout=3)
                return
            view.select_time(ns)

        self.app.push_screen(GotoScreen(), done)
