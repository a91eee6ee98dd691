"""Patches: what the recorder replaces in the standard library comes back as it was."""

from __future__ import annotations

import types

from tracelens.record._patch import Patches


def _patched() -> types.SimpleNamespace:
    """A class's staticmethod and method and a module's value, each patched once."""

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

    patches.set(Owner, "helper", staticmethod(lambda: "patched"))
    patches.set(Owner, "method", lambda self: "patched")
    patches.set(module, "value", 2)
    return types.SimpleNamespace(
        Owner=Owner, module=module, static_before=static_before, patches=patches
    )


def test_no_patches_is_false():
    """A Patches that has set nothing is false."""
    assert not Patches()


def test_set_replaces_the_attributes():
    """After set(), Patches is true and the attributes answer with the patched values."""
    p = _patched()
    Owner, module = p.Owner, p.module
    assert p.patches and Owner.helper() == Owner().method() == "patched" and module.value == 2


def test_original_is_the_value_before_the_patch():
    """original() gives the value an attribute had before it was patched."""
    p = _patched()
    assert p.patches.original(p.module, "value") == 1


def test_restore_puts_back_the_originals_as_they_were_defined():
    """restore() empties Patches and puts back each original, a staticmethod as a staticmethod."""
    p = _patched()
    Owner, module, patches = p.Owner, p.module, p.patches
    patches.restore()
    assert not patches
    assert vars(Owner)["helper"] is p.static_before  # still a staticmethod
    assert Owner.helper() == Owner().method() == "original" and module.value == 1
