"""Renderers: one module per output format, each ``render(report, options) -> str``.

``RENDERERS`` maps a format name to its render function. A renderer sees the
``Report`` (findings, summary, suppressed) and nothing else: it never reads the
trace and does not know how a finding was computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from tracelens.report import html, json_, markdown, sarif, text
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
    no_shared_state,
    stack_sections,
    variables_text,
)

Renderer = Callable[..., str]

#: Format name -> render function ``(report, options=None) -> str``.
RENDERERS: Final[dict[str, Renderer]] = {
    "text": text.render,
    "json": json_.render,
    "markdown": markdown.render,
    "html": html.render,
    "sarif": sarif.render,
}

#: Format names, the default first.
FORMATS: Final = tuple(RENDERERS)


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
    "no_shared_state",
    "render",
    "stack_sections",
    "variables_text",
]
