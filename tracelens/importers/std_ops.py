"""What an STD line may say, shared by the per-line converter and the vectorised one.

``THREAD|OP(ARG)|LOCATION``: the patterns are plain strings, so that Python's ``re``
(``tracelens.importers.std``) and polars (``tracelens.importers._std_fast``) both
compile them.
"""

from __future__ import annotations

from typing import Final

from tracelens import schema as s

#: ``OP(ARG)`` or a bare ``OP``: the op name and the argument.
EVENT_PATTERN: Final = r"^([A-Za-z_]+)(?:\((.*)\))?$"
#: A LOCATION that is a source line number (anything else is kept as ``func``).
NUMBER_PATTERN: Final = r"-?[0-9]{1,18}"
#: STD ops with an argument -> (tracelens op, kind).
SIMPLE_OPS: Final = {
    "r": (s.Op.READ, None),
    "w": (s.Op.WRITE, None),
    "acq": (s.Op.ACQUIRE, s.Kind.LOCK),
    "rel": (s.Op.RELEASE, s.Kind.LOCK),
    "req": (s.Op.ACQUIRE_TRY, s.Kind.LOCK),
    "fork": (s.Op.FORK, s.Kind.THREAD),
    "join": (s.Op.JOIN, s.Kind.THREAD),
}
#: STD ops that carry no meaning for these analyses: skipped and counted.
SKIPPED_OPS: Final = ("enter", "exit", "branch", "dummy")
