"""A virtualised table over a polars DataFrame, drawn with the Line API.

Only the rows on screen are ever turned into text, so a table of a million rows
opens as fast as one of ten. Cells are plain text segments (never markup): a
variable named ``[bold red]x[/]`` shows exactly like that, and control characters
(escape sequences, bidirectional overrides) show escaped (``clean``). Sorting is a polars
sort; the header row stays put while the rows scroll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracelens.report import clean
from tracelens.tui.messages import RowHighlighted, RowSelected

CellStyle = Callable[[Any, dict[str, Any]], Style | None]


@dataclass(frozen=True)
class Column:
    """A column of a ``FrameTable``.

    Attributes:
        key: The DataFrame column shown.
        label: The header text.
        min_width, max_width: Bounds of the width (measured from the data).
        justify: ``"left"`` or ``"right"``.
        sort_by: The column to sort by when sorting on this one (default: ``key``).
        style: ``style(value, row)`` gives a cell's style, or ``None``.
        fmt: ``fmt(value)`` gives a cell's text (default: ``str``, with thousands
            separators for ints).
    """

    key: str
    label: str
    min_width: int = 3
    max_width: int = 60
    justify: str = "left"
    sort_by: str | None = None
    style: CellStyle | None = None
    fmt: Callable[[Any], str] | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return f"{value:,}"
    return clean(str(value).replace("\n", "⏎").replace("\t", " "))


def _fit(text: str, width: int, justify: str) -> str:
    n = cell_len(text)
    if n > width:
        out, used = [], 0
        for ch in text:
            w = cell_len(ch)
            if used + w > width - 1:
                break
            out.append(ch)
            used += w
        return "".join(out) + "…" + " " * (width - 1 - used)
    pad = " " * (width - n)
    return pad + text if justify == "right" else text + pad


class FrameTable(ScrollView, can_focus=True):
    """A sortable, scrollable table of a DataFrame that renders only what is visible."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open", priority=False),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "Top", show=False),
        Binding("end,G", "jump(-1)", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "frame-table--header",
        "frame-table--cursor",
        "frame-table--sorted",
        "frame-table--empty",
    }

    DEFAULT_CSS = """
    FrameTable { height: 1fr; }
    FrameTable > .frame-table--header { text-style: bold; background: $panel; }
    FrameTable > .frame-table--sorted { text-style: bold underline; }
    FrameTable > .frame-table--cursor { background: $accent 40%; }
    FrameTable:focus > .frame-table--cursor { background: $accent; color: $text; }
    FrameTable > .frame-table--empty { color: $text-muted; text-style: italic; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)
    """The row under the cursor (index into the sorted frame)."""
    sort_column: reactive[str | None] = reactive(None)
    """The key of the column sorted on, or ``None`` for the frame's own order."""
    sort_descending: reactive[bool] = reactive(False)
    """Whether the sort is descending."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        empty: str = "nothing to show",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.empty = empty
        self._source = pl.DataFrame()
        self._frame = pl.DataFrame()
        self._widths: list[int] = []
        self._row_cache: dict[int, dict[str, Any]] = {}

    # data ---------------------------------------------------------------------
    @property
    def frame(self) -> pl.DataFrame:
        """The rows shown, in display order."""
        return self._frame

    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return self._frame.height

    def set_frame(self, frame: pl.DataFrame, *, keep: str | None = None) -> None:
        """Show ``frame`` (sorted by the current sort column).

        Args:
            frame: The rows.
            keep: A column whose value identifies rows: the cursor stays on the
                row with the same value when it is still there.
        """
        old = self.current_row() if keep else None
        self._source = frame
        self._measure()
        self._apply_sort()
        row = 0
        if keep and old is not None and keep in self._frame.columns:
            hits = self._frame.with_row_index("__i").filter(pl.col(keep) == old[keep])["__i"]
            row = int(hits[0]) if len(hits) else 0
        self.cursor_row = row
        self._scroll_cursor_visible()

    def _measure(self) -> None:
        widths = []
        for col in self.columns:
            w = max(col.min_width, cell_len(col.label) + 2)
            if self._source.height and col.key in self._source.columns:
                series = self._source[col.key]
                if series.dtype == pl.String:
                    head = series.head(5000)
                    longest = int(head.str.len_chars().max() or 0)  # type: ignore[arg-type]
                    if 0 < longest < col.max_width:  # the escaped text may be longer
                        longest = max(cell_len(_text(v)) for v in head.to_list())
                else:
                    longest = max((len(_text(v)) for v in (series.min(), series.max())), default=0)
                w = max(w, longest)
            widths.append(min(w, col.max_width))
        self._widths = widths
        total = sum(widths) + len(widths) + 1
        self.virtual_size = Size(total, self._frame.height + 1)

    def _apply_sort(self) -> None:
        frame = self._source
        key = self.sort_column
        if key is not None and frame.height:
            col = next((c for c in self.columns if c.key == key), None)
            by = col.sort_by if col and col.sort_by else key
            if by in frame.columns:
                frame = frame.sort(
                    by, descending=self.sort_descending, nulls_last=True, maintain_order=True
                )
        self._frame = frame
        self._row_cache.clear()
        total = sum(self._widths) + len(self._widths) + 1
        self.virtual_size = Size(total, self._frame.height + 1)
        self.refresh()

    def current_row(self) -> dict[str, Any] | None:
        """The row under the cursor, as a dict."""
        if not 0 <= self.cursor_row < self._frame.height:
            return None
        return self._row(self.cursor_row)

    def _row(self, i: int) -> dict[str, Any]:
        row = self._row_cache.get(i)
        if row is None:
            if len(self._row_cache) > 512:
                self._row_cache.clear()
            row = self._row_cache[i] = self._frame.row(i, named=True)
        return row

    # sorting ------------------------------------------------------------------
    def sort_by(self, key: str | None, descending: bool | None = None) -> None:
        """Sort on column ``key`` (``None``: the frame's order); keep the cursor row."""
        current = self.current_row()
        if descending is None:
            descending = (not self.sort_descending) if key == self.sort_column else False
        self.sort_column = key
        self.sort_descending = descending
        self._apply_sort()
        self.cursor_row = self._find(current)
        self._scroll_cursor_visible()

    def _find(self, row: dict[str, Any] | None) -> int:
        if row is None or not self._frame.height:
            return 0
        for i in range(min(self._frame.height, 100_000)):
            if self._row(i) == row:
                return i
        return 0

    def action_sort_next(self) -> None:
        """Sort on the next column (cycling)."""
        keys = [c.key for c in self.columns]
        i = keys.index(self.sort_column) + 1 if self.sort_column in keys else 0
        self.sort_by(keys[i % len(keys)], descending=False)

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self.sort_by(self.sort_column or self.columns[0].key, not self.sort_descending)

    # cursor -------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        """Keep the cursor on a row."""
        return max(0, min(row, self._frame.height - 1)) if self._frame.height else 0

    def watch_cursor_row(self, row: int) -> None:
        """Tell the parent which row is highlighted."""
        self.refresh()
        current = self.current_row()
        if current is not None:
            self.post_message(RowHighlighted(self, row, current))

    def _scroll_cursor_visible(self) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        self.cursor_row += delta
        self._scroll_cursor_visible()

    def action_page(self, direction: int) -> None:
        """Move the cursor a page up or down."""
        page = max(1, self.scrollable_content_region.height - 2)
        self.action_cursor(direction * page)

    def action_jump(self, where: int) -> None:
        """Move the cursor to the first (0) or last (-1) row."""
        self.cursor_row = 0 if where == 0 else self._frame.height - 1
        self._scroll_cursor_visible()

    def action_select(self) -> None:
        """Choose the row under the cursor."""
        current = self.current_row()
        if current is not None:
            self.post_message(RowSelected(self, self.cursor_row, current))

    def on_resize(self, _event: events.Resize) -> None:
        """Keep the cursor in view."""
        self._scroll_cursor_visible()

    # mouse --------------------------------------------------------------------
    def _column_at(self, x: int) -> int | None:
        x += int(self.scroll_x)
        edge = 1
        for i, w in enumerate(self._widths):
            if edge <= x < edge + w + 1:
                return i
            edge += w + 1
        return None

    def on_click(self, event: events.Click) -> None:
        """Click a header to sort, a row to move the cursor, double-click to open."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            i = self._column_at(offset.x)
            if i is not None:
                self.sort_by(self.columns[i].key)
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < self._frame.height:
            if row == self.cursor_row and event.chain >= 2:
                self.action_select()
            self.cursor_row = row
            self.focus()

    # rendering ----------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the widget: the header, or a row."""
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        base = self.rich_style
        if y == 0:
            strip = self._header(base)
        else:
            i = int(self.scroll_y) + y - 1
            if not self._frame.height and y == 1:
                style = base + self.get_component_rich_style("frame-table--empty")
                strip = Strip([Segment(" " + self.empty, style)])
            elif i >= self._frame.height:
                return Strip.blank(width, base)
            else:
                strip = self._line(i, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header(self, base: Style) -> Strip:
        header = base + self.get_component_rich_style("frame-table--header")
        sorted_style = header + self.get_component_rich_style("frame-table--sorted")
        segs = [Segment(" ", header)]
        for col, w in zip(self.columns, self._widths, strict=True):
            label = col.label
            style = header
            if col.key == self.sort_column:
                label += " ▼" if self.sort_descending else " ▲"
                style = sorted_style
            segs.append(Segment(_fit(label, w, col.justify), style))
            segs.append(Segment(" ", header))
        strip = Strip(segs)
        return strip.extend_cell_length(max(self.size.width, strip.cell_length), header)

    def _line(self, i: int, base: Style) -> Strip:
        row = self._row(i)
        cursor = i == self.cursor_row
        line_style = base + self.get_component_rich_style("frame-table--cursor") if cursor else base
        segs = [Segment(" ", line_style)]
        for col, w in zip(self.columns, self._widths, strict=True):
            value = row.get(col.key)
            text = clean(col.fmt(value)) if col.fmt else _text(value)
            style = line_style
            if col.style is not None:
                extra = col.style(value, row)
                if extra is not None:
                    style = (
                        line_style + extra if not cursor else line_style + Style(bold=extra.bold)
                    )
            segs.append(Segment(_fit(text, w, col.justify), style))
            segs.append(Segment(" ", line_style))
        strip = Strip(segs)
        return strip.extend_cell_length(max(self.size.width, strip.cell_length), line_style)
