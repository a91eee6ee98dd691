"""The terminal UI (``tracelens tui``): findings, variables and per-variable timelines.

``make_app(paths)`` builds the textual app; ``tracelens.tui.model`` holds what it
shows, computed with polars (no textual there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracelens.tui.app import TracelensApp, make_app

__all__ = ["TracelensApp", "make_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tracelens.tui import app

        return getattr(app, name)
    raise AttributeError(name)
