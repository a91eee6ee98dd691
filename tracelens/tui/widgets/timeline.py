"""The timeline of one variable: one lane per unit, time flowing left to right.

Drawn with the Line API: each line is computed from numpy arrays for the visible
columns only (one ``searchsorted`` per lane), so a variable with a million
accesses pans and zooms as fast as one with ten.

Marks: ``○`` read, ``●`` write, ``◐`` both in one column (zoomed out), ``◆`` another
event of a finding (a lock operation, say); ``━`` a read-modify-write window (a
read and the unit's next access, a write); a faint background where the unit
holds a lock. The finding being looked at is highlighted: its racing pair on
amber, the conflicting remote access on red. The selected event is reversed, and
its column is shaded across the lanes.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from tracelens.report import clean, format_duration
from tracelens.tui.messages import EventSelected
from tracelens.tui.model import Axis, LaneGeometry, Timeline, lane_geometry

LABEL_WIDTH = 18
TICK_EVERY = 14
#: Smallest zoom on the order axis: positions (events) per column.
MIN_ORDER_SCALE = 1 / 3

READ_STYLE = Style(color="#5fd7ff")
WRITE_STYLE = Style(color="#ffaf00", bold=True)
OTHER_STYLE = Style(color="#af87ff")
RMW_STYLE = Style(color="#875f00")
TRACK_STYLE = Style(color="#3a3a3a")
HOLD_BG = Style(bgcolor="#14331f")
CURSOR_COL_BG = Style(bgcolor="#2a2a3a")
PAIR_STYLE = Style(color="black", bgcolor="#ffaf00", bold=True)
REMOTE_STYLE = Style(color="white", bgcolor="#d70000", bold=True)
SELECTED_STYLE = Style(reverse=True, bold=True, underline=True)
LABEL_STYLE = Style(color="#bcbcbc")
LABEL_CURRENT = Style(color="black", bgcolor="#5fafff", bold=True)
AXIS_STYLE = Style(color="#808080")


class TimelineView(Widget, can_focus=True):
    """Lanes of one variable's events; the keys move a selection through them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "step(-1)", "Prev event", show=False),
        Binding("right,l", "step(1)", "Next event", show=False),
        Binding("shift+left,H", "lane_step(-1)", "Prev in lane", show=False),
        Binding("shift+right,L", "lane_step(1)", "Next in lane", show=False),
        Binding("up,k", "lane(-1)", "Lane up", show=False),
        Binding("down,j", "lane(1)", "Lane down", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", key_display="+"),
        Binding("minus", "zoom(2)", "Zoom out", key_display="-"),
        Binding("0", "fit", "Fit", show=False),
        Binding("less_than_sign,left_square_bracket", "pan(-0.5)", "Pan left", show=False),
        Binding("greater_than_sign,right_square_bracket", "pan(0.5)", "Pan right", show=False),
        Binding("n", "instance(1)", "Next finding"),
        Binding("N,p", "instance(-1)", "Prev finding", show=False),
        Binding("t", "toggle_axis", "Time/order"),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(-1)", "Last", show=False),
        Binding("c", "center", "Center", show=False),
    ]

    DEFAULT_CSS = """
    TimelineView { height: 1fr; min-height: 4; }
    TimelineView:focus { background-tint: $foreground 3%; }
    """

    selected: reactive[int] = reactive(0, always_update=True)
    """Row (in ``Timeline.events``) of the selected event."""
    axis: reactive[Axis] = reactive(Axis.ORDER)
    """What the x axis measures."""
    scale: reactive[float] = reactive(1.0)
    """Positions per column (events per column on the order axis, ns on the time axis)."""
    x0: reactive[float] = reactive(0.0)
    """Position at the left edge of the lanes."""
    instance: reactive[int | None] = reactive(None)
    """Index into ``Timeline.instances`` of the finding highlighted, or ``None``."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.timeline = timeline
        self.top_lane = 0
        self._geom: dict[Axis, list[LaneGeometry]] = {}
        self._pos: dict[Axis, np.ndarray] = {}
        self._cache: dict[int, Strip] = {}
        self._roles: dict[int, str] = {}

    # geometry -----------------------------------------------------------------
    def geometry(self) -> list[LaneGeometry]:
        """The lanes' positions on the current axis (computed once per axis)."""
        if self.axis not in self._geom:
            self._geom[self.axis] = lane_geometry(self.timeline, self.axis)
            self._pos[self.axis] = self.timeline.positions(self.axis)
        return self._geom[self.axis]

    def pos(self, row: int) -> float:
        """Position of event ``row`` on the current axis."""
        self.geometry()
        return float(self._pos[self.axis][row])

    @property
    def columns(self) -> int:
        """How many columns the lanes have."""
        return max(1, self.size.width - LABEL_WIDTH)

    @property
    def lane_rows(self) -> int:
        """How many lanes fit."""
        return max(1, self.size.height - 1)

    def span(self) -> tuple[float, float]:
        """The first and last position on the current axis."""
        self.geometry()
        pos = self._pos[self.axis]
        if not len(pos):
            return 0.0, 1.0
        return float(pos.min()), float(pos.max())

    def min_scale(self) -> float:
        """The largest zoom."""
        return MIN_ORDER_SCALE if self.axis is Axis.ORDER else 1.0

    def column_of(self, p: float) -> int:
        """The column position ``p`` falls in (may be off screen)."""
        return math.floor((p - self.x0) / self.scale + 1e-9)

    # reactive plumbing ----------------------------------------------------------
    def _invalidate(self) -> None:
        self._cache.clear()
        self.refresh()

    def watch_x0(self) -> None:
        """Redraw."""
        self._invalidate()

    def watch_scale(self) -> None:
        """Redraw."""
        self._invalidate()

    def watch_instance(self, index: int | None) -> None:
        """Remember the roles of the highlighted finding's events; redraw."""
        self._roles = {}
        if index is not None and 0 <= index < len(self.timeline.instances):
            for e in self.timeline.instances[index].events:
                row = self.timeline.row_of(e.pid, e.seq)
                if row is not None:
                    self._roles[row] = e.role
        self._invalidate()

    def validate_selected(self, row: int) -> int:
        """Keep the selection on an event."""
        return max(0, min(row, len(self.timeline) - 1))

    def watch_selected(self, row: int) -> None:
        """Keep the selection visible and tell the screen."""
        if not len(self.timeline):
            return
        self._ensure_visible(row)
        self._invalidate()
        self.post_message(EventSelected(row))

    def watch_axis(self, old: Axis, new: Axis) -> None:
        """Switch axis keeping the selection in the same column."""
        if old is new or not self.is_mounted:
            return
        self.action_fit()

    def on_resize(self, _event: events.Resize) -> None:
        """Redraw at the new size."""
        if len(self.timeline):
            self._ensure_visible(self.selected)
        self._invalidate()

    def on_mount(self) -> None:
        """Start zoomed in on the selection."""
        self.call_after_refresh(self._initial_view)

    def _initial_view(self) -> None:
        if self.axis is Axis.ORDER:
            # one event per column, or wider columns when the whole timeline fits
            fit = len(self.timeline) / max(1, self.columns - 4)
            scale = min(1.0, max(MIN_ORDER_SCALE, fit))
            self.scale = 1.0 / round(1.0 / scale) if scale < 1 else 1.0
        else:
            self.scale = self._fit_scale()
        self.action_center()

    def _ensure_visible(self, row: int) -> None:
        col = self.column_of(self.pos(row))
        if not 0 <= col < self.columns:
            self._center_on(self.pos(row))
        lane = self.timeline.lane_of(row)
        if lane < self.top_lane:
            self.top_lane = lane
        elif lane >= self.top_lane + self.lane_rows:
            self.top_lane = lane - self.lane_rows + 1

    def _center_on(self, p: float) -> None:
        """Put position ``p`` in the middle (without scrolling far past either end)."""
        lo, hi = self.span()
        x0 = p - self.scale * (self.columns // 2)
        x0 = min(x0, hi - (self.columns - 3) * self.scale)
        x0 = max(x0, lo - 2 * self.scale)
        if self.axis is Axis.ORDER and self.scale >= 1:
            x0 = math.floor(x0)
        self.x0 = x0

    def _fit_scale(self) -> float:
        lo, hi = self.span()
        return max(self.min_scale(), (hi - lo + 1) / self.columns)

    # actions -------------------------------------------------------------------
    def action_step(self, delta: int) -> None:
        """Select the previous/next event of the variable (any lane)."""
        self.selected += delta

    def action_lane_step(self, delta: int) -> None:
        """Select the previous/next event in the selected event's lane."""
        if not len(self.timeline):
            return
        lane = self.timeline.lanes[self.timeline.lane_of(self.selected)]
        i = int(np.searchsorted(lane.rows, self.selected))
        j = max(0, min(len(lane.rows) - 1, i + delta))
        self.selected = int(lane.rows[j])

    def action_lane(self, delta: int) -> None:
        """Select the event nearest in time in the lane above/below."""
        if not len(self.timeline):
            return
        lane_no = self.timeline.lane_of(self.selected) + delta
        if not 0 <= lane_no < len(self.timeline.lanes):
            return
        geom = self.geometry()[lane_no]
        p = self.pos(self.selected)
        i = int(np.searchsorted(geom.pos, p))
        best = min(
            (j for j in (i - 1, i) if 0 <= j < len(geom.pos)), key=lambda j: abs(geom.pos[j] - p)
        )
        self.selected = int(geom.rows[best])

    def action_zoom(self, factor: float) -> None:
        """Zoom in (factor < 1) or out around the selected event."""
        lo, hi = self.span()
        limit = max(self.min_scale(), (hi - lo + 1) / max(1, self.columns) * 1.0)
        scale = min(max(self.scale * factor, self.min_scale()), max(limit, self.min_scale()))
        if self.axis is Axis.ORDER and scale > 1:
            scale = float(round(scale))
        if not len(self.timeline):
            return
        p = self.pos(self.selected)
        col = self.column_of(p)
        col = col if 0 <= col < self.columns else self.columns // 2
        self.scale = scale
        x0 = p - col * scale
        self.x0 = math.floor(x0) if self.axis is Axis.ORDER and scale >= 1 else x0

    def action_fit(self) -> None:
        """Zoom out to show the whole timeline."""
        lo, _hi = self.span()
        self.scale = self._fit_scale()
        self.x0 = lo

    def action_pan(self, fraction: float) -> None:
        """Move the view by a fraction of its width (the selection stays)."""
        step = self.columns * self.scale * fraction
        if self.axis is Axis.ORDER and self.scale >= 1:
            step = math.copysign(max(1, round(abs(step))), step)
        self.x0 = self.x0 + step

    def action_center(self) -> None:
        """Center the view on the selected event."""
        if len(self.timeline):
            self._center_on(self.pos(self.selected))

    def action_edge(self, where: int) -> None:
        """Select the first (0) or last (-1) event."""
        self.selected = 0 if where == 0 else len(self.timeline) - 1

    def action_toggle_axis(self) -> None:
        """Switch between the order axis and the time axis."""
        self.axis = Axis.TIME if self.axis is Axis.ORDER else Axis.ORDER

    def action_instance(self, delta: int) -> None:
        """Highlight the next/previous finding on this variable and select its events."""
        n = len(self.timeline.instances)
        if not n:
            self.notify("no findings on this variable", severity="information", timeout=2)
            return
        index = (
            0
            if self.instance is None and delta > 0
            else (n - 1 if self.instance is None else (self.instance + delta) % n)
        )
        self.show_instance(index)

    def show_instance(self, index: int) -> None:
        """Highlight finding instance ``index``; select its remote access (or first event)."""
        self.instance = index
        rows = [r for r in sorted(self._roles)]
        if not rows:
            return
        remote = [r for r, role in self._roles.items() if "remote" in role]
        first, last = rows[0], rows[-1]
        target = remote[0] if remote else first
        # zoom so that the whole instance fits, if it is wider than the view
        width = abs(self.pos(last) - self.pos(first)) + 1
        if width / self.scale > self.columns * 0.8:
            scale = width / (self.columns * 0.8)
            self.scale = float(math.ceil(scale)) if self.axis is Axis.ORDER else scale
        self._center_on((self.pos(first) + self.pos(last)) / 2)
        self.selected = target

    def select_time(self, ns: int) -> None:
        """Select the first event at or after ``ns`` since the start of the trace."""
        self.selected = self.timeline.time_row(ns)
        self.action_center()

    def select_row(self, row: int) -> None:
        """Select event ``row`` and center on it."""
        self.selected = row
        self.action_center()

    # mouse -----------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        """Select the event under (or nearest to) the mouse in that lane."""
        self.focus()
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        lane_no = self.top_lane + offset.y - 1
        if lane_no >= len(self.timeline.lanes):
            return
        geom = self.geometry()[lane_no]
        if not len(geom.pos):
            return
        col = max(0, offset.x - LABEL_WIDTH)
        p = self.x0 + (col + 0.5) * self.scale
        i = int(np.searchsorted(geom.pos, p))
        best = min(
            (j for j in (i - 1, i) if 0 <= j < len(geom.pos)), key=lambda j: abs(geom.pos[j] - p)
        )
        if abs(self.column_of(geom.pos[best]) - col) <= 3:
            self.selected = int(geom.rows[best])

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        """Wheel: pan right (ctrl: zoom out)."""
        event.stop()
        if event.ctrl:
            self.action_zoom(2)
        else:
            self.action_pan(0.1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """Wheel: pan left (ctrl: zoom in)."""
        event.stop()
        if event.ctrl:
            self.action_zoom(0.5)
        else:
            self.action_pan(-0.1)

    # rendering -------------------------------------------------------------------
    def scale_text(self) -> str:
        """What one column stands for."""
        if self.axis is Axis.ORDER:
            if self.scale < 1:
                return f"1 event per {round(1 / self.scale)} columns"
            return f"{self.scale:g} event{'s' if self.scale != 1 else ''} per column"
        return f"{format_duration(self.scale, compact=True)} per column"

    def render_line(self, y: int) -> Strip:
        """Line ``y``: the time axis (0) or a lane."""
        width = self.size.width
        if y not in self._cache:
            strip = self._axis_line() if y == 0 else self._lane_line(self.top_lane + y - 1)
            self._cache[y] = strip.crop_extend(0, width, self.rich_style)
        return self._cache[y]

    def _axis_line(self) -> Strip:
        label = f"{'unit':<{LABEL_WIDTH - 1}} "
        cells = [" "] * self.columns
        pos = self._pos.get(self.axis) if self.geometry() is not None else None
        ts = self.timeline._ts
        for c in range(0, self.columns, TICK_EVERY):
            p = self.x0 + c * self.scale
            if self.axis is Axis.ORDER:
                if pos is None or not len(pos):
                    break
                if p < -0.5 or p > len(pos) - 1:
                    continue
                row = min(max(0, math.ceil(p)), len(pos) - 1)
                text = "╷+" + format_duration(int(ts[row]) - self.timeline.t0, compact=True)
            else:
                if p < 0:
                    continue
                text = "╷+" + format_duration(p, compact=True)
            for k, ch in enumerate(text[: TICK_EVERY - 1]):
                if c + k < self.columns:
                    cells[c + k] = ch
        return Strip(
            [Segment(label, AXIS_STYLE + Style(bold=True)), Segment("".join(cells), AXIS_STYLE)]
        )

    def _lane_line(self, lane_no: int) -> Strip:
        tl = self.timeline
        if lane_no >= len(tl.lanes):
            return Strip.blank(self.size.width, self.rich_style)
        lane = tl.lanes[lane_no]
        geom = self.geometry()[lane_no]
        w = self.columns
        sel_lane = tl.lane_of(self.selected) if len(tl) else -1
        shown = clean(lane.name)
        name = shown if len(shown) < LABEL_WIDTH - 1 else shown[: LABEL_WIDTH - 2] + "…"
        segs = [
            Segment(
                f"{name:<{LABEL_WIDTH - 1}} ", LABEL_CURRENT if lane_no == sel_lane else LABEL_STYLE
            )
        ]

        edges = self.x0 + self.scale * np.arange(w + 1, dtype=np.float64)
        # events per column: positions p with edges[c] <= p < edges[c+1]
        idx = np.searchsorted(geom.pos, edges - 1e-9, side="left")
        n = np.diff(idx)
        nw = geom.writes[idx[1:]] - geom.writes[idx[:-1]]
        no = geom.others[idx[1:]] - geom.others[idx[:-1]]
        nr = n - nw - no

        hold = self._columns_covered(geom.hold_start, geom.hold_end, w)
        rmw = self._columns_covered(geom.rmw_start, geom.rmw_end, w)

        # highlighted events of this lane
        marks: dict[int, Style] = {}
        for row, role in self._roles.items():
            if tl.lane_of(row) == lane_no:
                c = self.column_of(self.pos(row))
                if 0 <= c < w:
                    marks[c] = REMOTE_STYLE if "remote" in role else PAIR_STYLE
        sel_col = self.column_of(self.pos(self.selected)) if len(tl) else -1
        sel_here = sel_lane == lane_no

        cells: list[Segment] = []
        for c in range(w):
            bg = HOLD_BG if hold[c] else None
            if c == sel_col and not bg:
                bg = CURSOR_COL_BG
            if n[c]:
                if nw[c] and nr[c]:
                    ch, st = "◐", WRITE_STYLE
                elif nw[c]:
                    ch, st = "●", WRITE_STYLE
                elif nr[c]:
                    ch, st = "○", READ_STYLE
                else:
                    ch, st = "◆", OTHER_STYLE
                if c in marks:
                    st = marks[c]
                    bg = None
            elif rmw[c]:
                ch, st = "━", RMW_STYLE
            else:
                ch, st = "·", TRACK_STYLE
            style = st + bg if bg else st
            if sel_here and c == sel_col:
                style = style + SELECTED_STYLE
            cells.append(Segment(ch, style))
        return Strip(segs + Strip(cells).simplify()._segments)

    def _columns_covered(self, start: np.ndarray, end: np.ndarray, w: int) -> np.ndarray:
        """Which columns the intervals ``[start, end]`` touch (strictly inside for bars)."""
        out = np.zeros(w, dtype=bool)
        if not len(start):
            return out
        x_end = self.x0 + self.scale * w
        m = (end >= self.x0) & (start < x_end)
        if not m.any():
            return out
        cs = np.floor((start[m] - self.x0) / self.scale + 1e-9).astype(np.int64)
        ce = np.floor((end[m] - self.x0) / self.scale + 1e-9).astype(np.int64)
        cs = np.clip(cs, 0, w - 1)
        ce = np.clip(ce, 0, w - 1)
        diff = np.zeros(w + 1, dtype=np.int64)
        np.add.at(diff, cs, 1)
        np.add.at(diff, ce + 1, -1)
        return np.cumsum(diff[:w]) > 0
