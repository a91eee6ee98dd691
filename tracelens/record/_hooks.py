"""Run a callback right after a module is first imported, or now if it already is.

``configure`` would otherwise import asyncio, ``concurrent.futures`` and structlog
(with rich) only to patch or configure them: about 0.2 s, most of a small program's
time under tracelens, for modules many programs never use. Instead it asks to be
told when the program imports them, and patches them then, before the program's
next line runs. The finder sits first on ``sys.meta_path``, answers only for the
modules it waits for, lets the finders after it find them, and runs the callbacks
once the module's own code has run; the module's ``__loader__`` and
``__spec__.loader`` stay the real ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from tracelens.record._core import say_once

Callback = Callable[[ModuleType], None]

__all__ = ["cancel_all", "when_imported"]


class _Loader:
    """Wraps a module's real loader: runs its code, then the waiting callbacks."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _fire(self._name, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, is_package, ...
        return getattr(self._loader, name)


class _Finder:
    """On ``sys.meta_path``: finds nothing itself, wraps the loaders of awaited modules."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> Any:
        if name not in _PENDING:
            return None
        try:
            later = sys.meta_path[sys.meta_path.index(self) + 1 :]
        except ValueError:
            return None
        for finder in later:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, name)
                return spec
        return None


_PENDING: dict[str, list[Callback]] = {}
_FINDER = _Finder()


def _fire(name: str, module: ModuleType) -> None:
    for callback in _PENDING.pop(name, ()):
        _call(callback, module)
    if not _PENDING:
        _remove_finder()


def _call(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception as exc:  # recording never breaks the program's import
        say_once(f"could not instrument {module.__name__}: {exc!r}; it is not recorded")


def _remove_finder() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        _call(callback, module)
        return
    _PENDING.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def cancel_all() -> None:
    """Forget every waiting callback (``shutdown``)."""
    _PENDING.clear()
    _remove_finder()
