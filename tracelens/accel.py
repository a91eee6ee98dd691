"""Whether the optional C accelerators may be used.

Two parts have a compiled twin, built by ``setup.py`` when a compiler is there: the
recorder's hot path (``tracelens.record._speedups``) and the analyzer's happens-before
walk (``tracelens.analyze.hb._clockwalk``). Their pure-Python code is the reference and
runs where the build is absent, or everywhere when ``TRACELENS_PURE_PYTHON`` is set to
anything but ``0`` (read once, when each part is imported).
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["PURE_PYTHON_ENV", "pure_python"]

#: The environment variable that forces the pure-Python paths.
PURE_PYTHON_ENV: Final = "TRACELENS_PURE_PYTHON"


def pure_python() -> bool:
    """Whether ``TRACELENS_PURE_PYTHON`` asks for the pure-Python paths."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")
