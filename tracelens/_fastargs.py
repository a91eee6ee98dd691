"""A quick reading of a typer command's arguments, for ``tracelens report``.

typer 0.29 coerces every parameter's value with a pydantic ``TypeAdapter`` that it
builds on first use: for ``report`` that is about 70 ms of CPU (pydantic's import and
fifteen adapters), a quarter of the command on a small trace. ``parse`` reads a
command line against the command's own typer annotations (its one definition, in
``tracelens.cli``) for the plain cases only: long and short options with their
values (``--format json``, ``--format=json``, ``-f json``), flags, and positional
paths. Anything else (help, an unknown or repeated option, a value that is not
plainly valid, a parameter declaration this module does not know) returns ``None``,
and the caller hands the command line to typer, which then parses it, reports its
errors and prints its help as always. So the quick path can only agree with typer
or step aside (``tests/cli/test_fastargs.py`` checks that against typer itself).
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

#: A parameter declaration's settings that this module reads, with what it supports.
#: A declaration with any other setting different from typer's default is declined.
_DEFAULTS: Final[dict[str, Any]] = {
    "callback": None,
    "expose_value": True,
    "is_eager": False,
    "envvar": None,
    "default_factory": None,
    "parser": None,
    "prompt": False,
    "is_flag": None,
    "flag_value": None,
    "count": False,
    "max": None,
    "clamp": False,
    "formats": None,
    "mode": None,
    "exists": False,
    "writable": False,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
    "case_sensitive": True,
    "click_type": None,
}


class _Decline(Exception):
    """The command line is not a plain case: typer must read it."""


def _base(annotation: Any) -> tuple[Any, bool]:
    """``(T, optional)`` of ``T``, ``T | None`` or ``Optional[T]``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise _Decline
        return rest[0], True
    return annotation, False


def _convert(kind: Any, info: Any, text: str) -> Any:
    """``text`` as a value of ``kind``, or ``_Decline`` unless it is plainly valid."""
    if not text or text.startswith("-"):
        raise _Decline
    if kind is str:
        return text
    if kind is int:
        if not (text.isascii() and text.isdigit()):
            raise _Decline
        value = int(text)
        if info.min is not None and value < info.min:
            raise _Decline
        return value
    if kind is Path:
        if (not info.dir_okay and os.path.isdir(text)) or (
            not info.file_okay and os.path.isfile(text)
        ):
            raise _Decline
        return Path(text)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        for member in kind:
            if member.value == text:
                return member
        raise _Decline
    raise _Decline


class _Param:
    """One parameter of the command: its name, type, declaration and default."""

    def __init__(self, meta: Any) -> None:
        from typer.models import ArgumentInfo, OptionInfo

        self.info = info = meta.default  # typer's normalised declaration
        if not isinstance(info, (ArgumentInfo, OptionInfo)):
            raise _Decline
        for setting, usual in _DEFAULTS.items():
            if getattr(info, setting, usual) != usual:
                raise _Decline
        self.name: str = meta.name
        self.positional = isinstance(info, ArgumentInfo)
        annotation = meta.annotation
        self.many = typing.get_origin(annotation) is list
        self.kind, optional = _base(typing.get_args(annotation)[0] if self.many else annotation)
        self.flag = self.kind is bool and not self.positional
        self.default: Any = info.default
        if self.default is ...:
            if not self.positional:
                raise _Decline
        elif (self.default is None and not optional) or (self.flag and self.default is not False):
            raise _Decline
        if self.positional:
            self.names: tuple[str, ...] = ()
            if not self.many:
                raise _Decline
        else:
            if self.many or not info.param_decls:
                raise _Decline
            self.names = tuple(info.param_decls)
            if any("/" in n or not n.startswith("-") or n in ("-", "--") for n in self.names):
                raise _Decline


def parse(command: Callable[..., Any], argv: Sequence[str]) -> dict[str, Any] | None:
    """The keyword arguments typer would call ``command`` with, or ``None``.

    Args:
        command: A function declared with typer's ``Annotated[..., typer.Option(...)]``
            and ``typer.Argument(...)`` parameters (one positional list at most).
        argv: The command's arguments (after its name).

    Returns:
        The arguments by parameter name, every default filled in; ``None`` when the
        command line or a declaration is not one of the plain cases, so that typer
        must read it.
    """
    try:
        return _parse(command, argv)
    except _Decline:
        return None


def _parse(command: Callable[..., Any], argv: Sequence[str]) -> dict[str, Any]:
    from typer.utils import get_params_from_function

    params = [_Param(meta) for meta in get_params_from_function(command).values()]
    by_name = {n: p for p in params for n in p.names}
    positional = [p for p in params if p.positional]
    if len(positional) > 1 or len(by_name) != sum(len(p.names) for p in params):
        raise _Decline
    values: dict[str, Any] = {}
    loose: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if not token.startswith("-") or token == "-":
            loose.append(token)
            continue
        name, eq, attached = token.partition("=")
        param = by_name.get(name)
        if param is None or param.name in values or (eq and not name.startswith("--")):
            raise _Decline
        if param.flag:
            if eq:
                raise _Decline
            values[param.name] = True
            continue
        text = attached if eq else next(tokens, "")
        values[param.name] = _convert(param.kind, param.info, text)
    if loose:
        if not positional:
            raise _Decline
        p = positional[0]
        values[p.name] = [_convert(p.kind, p.info, t) for t in loose]
    for p in params:
        if p.name not in values:
            if p.default is ...:
                raise _Decline
            values[p.name] = p.default
    return values


def finish(code: int) -> NoReturn:
    """Flush stdout and stderr and end the process with ``code`` at once.

    The interpreter's own shutdown, with polars and the analyses' modules loaded,
    costs about 50 ms of CPU that a finished command does not need; nothing of the
    command is left to run (the cache is written before the report, threads joined).
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a gone reader was handled
            stream.flush()
    os._exit(code)


def call(command: Callable[..., Any], kwargs: dict[str, Any]) -> int:
    """Run ``command(**kwargs)`` as typer's standalone mode would; its exit status.

    ``typer.Exit`` gives its code, an interrupt 130 and a reader gone from stdout
    (``EPIPE``) 1, as with typer.
    """
    import errno

    import typer

    try:
        command(**kwargs)
    except typer.Exit as e:
        return int(e.exit_code)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        return 1
    return 0
