"""The errors tracelens raises on purpose, in one tree.

::

    TracelensError                  anything tracelens reports in one line (exit 2)
    ├── TraceError                  a trace cannot be loaded
    │   └── SuppressionError        a suppression file or rule is bad
    ├── StdError (also ValueError)  an STD trace cannot be converted
    └── UsageError                  the command line asks for something impossible

``str(err)`` is always a one-line message meant for the user, and the command line
turns any of these into ``tracelens: error: <message>`` and exit code 2. Errors that
are not in this tree (an ``OSError`` from the file system, say) are the command line's
to phrase. This module imports only the standard library: the recorder may import it.
"""

from __future__ import annotations

__all__ = ["StdError", "SuppressionError", "TraceError", "TracelensError", "UsageError"]


class TracelensError(Exception):
    """A problem tracelens reports to the user in one line."""


class TraceError(TracelensError):
    """A trace cannot be loaded. ``str(err)`` is a one-line message for the user."""


class SuppressionError(TraceError):
    """A suppression file cannot be read or has a bad rule (one-line message)."""


class StdError(TracelensError, ValueError):
    """An STD trace cannot be converted (one-line message with the line number)."""


class UsageError(TracelensError):
    """A problem with the command line or its input, reported in one line (exit 2)."""
