"""Patches: what the recorder replaces in the standard library comes back as it was."""

from __future__ import annotations

import types

from tracelens.record._patch import Patches


def test_restore_puts_back_the_originals_as_they_were_defined():
    class Owner:
        @staticmethod
        def helper() -> str:
            return "original"

        def method(self) -> str:
            return "original"

    module = types.ModuleType("m")
    module.value = 1  # type: ignore[attr-defined]
    static_before = vars(Owner)["helper"]
    patches = Patches()
    assert not patches

    patches.set(Owner, "helper", staticmethod(lambda: "patched"))
    patches.set(Owner, "method", lambda self: "patched")
    patches.set(module, "value", 2)
    assert patches and Owner.helper() == Owner().method() == "patched" and module.value == 2
    assert patches.original(module, "value") == 1

    patches.restore()
    assert not patches
    assert vars(Owner)["helper"] is static_before  # still a staticmethod
    assert Owner.helper() == Owner().method() == "original" and module.value == 1
