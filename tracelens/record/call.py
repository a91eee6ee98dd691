"""Run one function of the program's code, imported: what ``schedule.Call`` runs.

``python -m tracelens run -m tracelens.record.call PATH MODULE FUNC ARGS_JSON`` puts
``PATH`` first on ``sys.path``, imports ``MODULE`` by its name (not as ``__main__``: its
``if __name__ == "__main__":`` block does not run), looks up ``FUNC`` (a dotted
qualified name) in it and calls it with the JSON list ``ARGS_JSON``. What the function
returns is ignored; an exception it raises ends the run as the program's would.
Standard library only.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "resolve"]


def resolve(module: str, func: str, path: str = "") -> Any:
    """The function ``func`` of ``module``, imported (from ``path`` first, if given)."""
    if path and path not in sys.path:
        sys.path.insert(0, path)
    target: Any = importlib.import_module(module)
    for part in func.split("."):
        target = getattr(target, part)
    return target


def main(argv: Sequence[str]) -> None:
    """Import ``argv[1]``'s module from path ``argv[0]`` and call its function."""
    path, module, func, args = argv
    resolve(module, func, path)(*json.loads(args))


if __name__ == "__main__":
    main(sys.argv[1:])
