"""The code around a call site, syntax-highlighted, when the file exists here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from tracelens.report import clean
from tracelens.report.sources import source_lines
from tracelens.tui.model import short_path


class SourcePane(Static):
    """Shows ``file:line`` with some lines around it; a note when the file is missing."""

    DEFAULT_CSS = """
    SourcePane { height: 1fr; overflow: hidden; }
    """

    def __init__(
        self,
        *,
        search: Sequence[Path] = (),
        roots: Sequence[Path] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.search = list(search)
        self.roots = None if roots is None else list(roots)
        self.location: tuple[str | None, int | None] = (None, None)

    def show(self, file: str | None, line: int | None) -> None:
        """Show the code around ``file:line``."""
        if (file, line) == self.location:
            return
        self.location = (file, line)
        context = max(2, (self.size.height or 17) // 2)
        found = source_lines(file, line, context=context, search=self.search, roots=self.roots)
        self.border_title = Content(clean(f"{short_path(file)}:{line if line else '?'}"))
        if isinstance(found, str):
            note = Text(f"source not shown ({found}): ", style="italic #8a8a8a")
            note.append(clean(str(file or "?")), style="#bcbcbc")
            self.update(note)
            return
        _path, first, code = found
        self.update(
            Syntax(
                code.rstrip("\n"),
                "python",
                theme="ansi_dark",
                line_numbers=True,
                start_line=first,
                highlight_lines={line} if line else None,
                word_wrap=False,
                background_color="default",
            )
        )
