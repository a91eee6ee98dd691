"""The attributes the recorder replaces in the standard library, and their originals."""

from __future__ import annotations

from typing import Any

__all__ = ["Patches"]


class Patches:
    """Replaced attributes of classes and modules, restorable in one call.

    One per instrumented module (``threads``, ``processes``, ``sync``, ``futures``,
    ``aio``): ``set`` replaces, ``original`` is what the replacement calls through
    (on the hot path: one dict lookup), ``restore`` undoes every ``set``.
    """

    def __init__(self) -> None:
        self._orig: dict[tuple[Any, str], Any] = {}

    def __bool__(self) -> bool:
        """Whether anything is patched (``install`` is idempotent on this)."""
        return bool(self._orig)

    def set(self, owner: Any, attr: str, new: Any) -> None:
        """Replace ``owner.attr`` by ``new``, keeping the original.

        The original is taken from ``owner.__dict__`` when it is there (a
        ``staticmethod`` or ``classmethod`` stays one when restored), else as
        ``getattr`` gives it.
        """
        here = vars(owner)
        self._orig[(owner, attr)] = here[attr] if attr in here else getattr(owner, attr)
        setattr(owner, attr, new)

    def original(self, owner: Any, attr: str) -> Any:
        """The attribute ``set`` replaced."""
        return self._orig[(owner, attr)]

    def restore(self) -> None:
        """Put every original back."""
        for (owner, attr), old in self._orig.items():
            setattr(owner, attr, old)
        self._orig.clear()
