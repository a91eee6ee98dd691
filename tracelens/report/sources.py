"""Reading the user's source for a call site a trace names, safely.

A trace is untrusted: it may name any file. ``source_lines`` reads only regular files
under the directories the user allowed, of bounded size, and escapes what it returns.
The TUI's source pane and the report's stable fingerprints (``report.baseline``) use it.
"""

from __future__ import annotations

import linecache
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tracelens.report._common import clean

__all__ = ["MAX_SOURCE_BYTES", "source_lines"]


#: Largest source file read (a bigger one is not shown: it would stall it).
MAX_SOURCE_BYTES: Final = 2 << 20


def source_lines(
    file: str | None,
    line: int | None,
    context: int = 8,
    search: Sequence[Path] = (),
    roots: Sequence[Path] | None = None,
) -> tuple[str, int, str] | str:
    """The code around ``file:line``: ``(path, first line number, text)``, or why not.

    A trace is untrusted: it may name any file (``/etc/shadow``, ``../../x``, a device,
    a 1 GB log). Only regular files under ``roots`` (after resolving symbolic links)
    and at most ``MAX_SOURCE_BYTES`` long are read; control characters in them are
    shown escaped, as in every other view of trace text.

    Args:
        file: The call site's file as recorded (absolute, or relative to where the
            program ran).
        line: The call site's line (1-based).
        context: Lines shown before and after.
        search: Extra directories to try relative paths in (e.g. the trace's folder).
        roots: The directories whose files may be shown (default: the working
            directory and ``search``).

    Returns:
        The code, or a short reason it is not shown (``"not found on this machine"``,
        ``"outside the project directories"``, ...).
    """
    if not file or not line or line < 1:
        return "no call site recorded"
    return lines_of(source_files(file, search, roots), line, context)


#: What ``source_files`` found for one candidate path: its lines, or why not.
Candidate = tuple[str, list[str]] | str


def source_files(
    file: str, search: Sequence[Path] = (), roots: Sequence[Path] | None = None
) -> list[Candidate]:
    """The candidate files a call site's ``file`` may be, in order: each ``(path, its
    lines)`` when it passes ``source_lines``'s checks, else the reason it does not.

    The part of ``source_lines`` that depends on the file alone, for callers that look
    up many lines of the same files (``tracelens.report.baseline``); ``lines_of`` does
    the rest.
    """
    allowed = [Path(r).resolve() for r in (roots if roots is not None else [Path.cwd(), *search])]
    candidates = [Path(file)]
    if not Path(file).is_absolute():
        candidates += [Path(d) / file for d in search]
    found: list[Candidate] = []
    for p in candidates:
        try:
            real = p.resolve()
            st = real.stat()
        except (OSError, RuntimeError, ValueError):
            continue
        if not any(real.is_relative_to(a) for a in allowed):
            found.append("outside the project directories (--root DIR shows files under DIR)")
        elif not stat.S_ISREG(st.st_mode):
            found.append("not a regular file")
        elif st.st_size > MAX_SOURCE_BYTES:
            found.append(f"larger than {MAX_SOURCE_BYTES >> 20} MiB")
        else:
            found.append((str(p), linecache.getlines(str(real))))
    return found


def lines_of(found: Sequence[Candidate], line: int, context: int = 8) -> tuple[str, int, str] | str:
    """``source_lines``'s answer for ``line`` of the candidates ``source_files`` found."""
    if line < 1:
        return "no call site recorded"
    reason = "not found on this machine"
    for candidate in found:
        if isinstance(candidate, str):
            reason = candidate
            continue
        path, lines = candidate
        if not lines or line > len(lines):
            reason = f"line {line} is past the end of the file"
            continue
        first = max(1, line - context)
        last = min(len(lines), line + context)
        text = "".join(clean(ln.rstrip("\r\n")) + "\n" for ln in lines[first - 1 : last])
        return path, first, text
    return reason
