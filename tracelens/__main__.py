"""``python -m tracelens`` and the ``tracelens`` console script.

``tracelens run`` goes straight to the recorder's runner, before typer, rich or
anything else is imported: a program's import-time locks are created after
``configure()`` only if nothing imported them first. ``tracelens report`` reads its
plain command lines without typer's parsing (``tracelens._fastargs``: typer builds a
pydantic adapter per parameter, about 70 ms) and hands typer every other one;
it ends the process without the interpreter's shutdown once its output is flushed.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> Any:
    """Dispatch ``run`` to the runner, everything else to the typer app."""
    if len(sys.argv) == 2 and sys.argv[1] in ("--version", "-V"):
        from tracelens import __version__

        print(f"tracelens {__version__}")
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from tracelens.record.runner import main as run_main

        sys.exit(run_main())
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        from tracelens import cli
        from tracelens._fastargs import call, finish, parse

        kwargs = parse(cli.report, sys.argv[2:])
        if kwargs is not None:
            finish(call(cli.report, kwargs))
    from tracelens.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    main()
