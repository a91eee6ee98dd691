"""Renderers: one module per output format, each ``render(report, options) -> str``.

``RENDERERS`` maps a format name to its render function. A renderer sees the
``Report`` (findings, summary, suppressed) and nothing else: it never reads the
trace and does not know how a finding was computed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from tracelens.report._common import (
    NO_SHARED_STATE,
    RenderOptions,
    ReportLike,
    bug_note,
    clean,
    damage_text,
    explanation_text,
    format_duration,
    frame_texts,
    held_text,
    no_shared_state,
    stack_sections,
    variables_text,
)

Renderer = Callable[..., str]

#: Format name -> the module of its renderer, the default first.
_MODULES: Final = {
    "text": "text",
    "json": "json_",
    "markdown": "markdown",
    "html": "html",
    "sarif": "sarif",
}


class _Renderers(Mapping[str, Renderer]):
    """Format name -> render function, each module imported when its format is used
    (a command renders one format: rich, for text, costs ~15 ms to import)."""

    def __getitem__(self, fmt: str) -> Renderer:
        module = importlib.import_module(f"{__name__}.{_MODULES[fmt]}")
        render: Renderer = module.render
        return render

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


#: Format name -> render function ``(report, options=None) -> str``.
RENDERERS: Final[Mapping[str, Renderer]] = _Renderers()

#: Format names, the default first.
FORMATS: Final = tuple(_MODULES)


def render(report: ReportLike, fmt: str = "text", options: RenderOptions | None = None) -> str:
    """Render a report in one of the ``FORMATS``.

    Args:
        report: The analysis report.
        fmt: The format name.
        options: Rendering options (root for relative paths, colour, width).

    Returns:
        The rendered report.

    Raises:
        KeyError: ``fmt`` is not a known format.
    """
    return RENDERERS[fmt](report, options)


__all__ = [
    "FORMATS",
    "NO_SHARED_STATE",
    "RENDERERS",
    "RenderOptions",
    "ReportLike",
    "bug_note",
    "clean",
    "damage_text",
    "explanation_text",
    "format_duration",
    "frame_texts",
    "held_text",
    "no_shared_state",
    "render",
    "stack_sections",
    "variables_text",
]
