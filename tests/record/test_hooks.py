"""Post-import hooks: a callback runs once its module is imported, never breaking the import."""

from __future__ import annotations

import sys

import pytest

from tracelens.record import _hooks


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A module `tl_hookmod` on sys.path whose source the test writes."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tl_hookmod", raising=False)
    yield tmp_path / "tl_hookmod.py"
    sys.modules.pop("tl_hookmod", None)
    _hooks.cancel_all()


def test_a_callback_runs_after_the_module_is_imported(package):
    """The callback sees the module with its code run, and its loader is the real one."""
    package.write_text("VALUE = 42\n")
    seen = []
    _hooks.when_imported("tl_hookmod", lambda m: seen.append(m.VALUE))
    import tl_hookmod

    assert seen == [42]
    assert type(tl_hookmod.__loader__).__name__ == "SourceFileLoader"


def test_a_callback_for_an_imported_module_runs_at_once(package):
    """when_imported on a module already in sys.modules calls back immediately."""
    seen = []
    _hooks.when_imported("sys", lambda m: seen.append(m.__name__))
    assert seen == ["sys"]


def test_a_failed_import_raises_the_programs_error_and_the_hook_waits(package):
    """The module's own error propagates; the callback runs on the next, working import."""
    package.write_text("raise ValueError('the program broke')\n")
    seen = []
    _hooks.when_imported("tl_hookmod", lambda m: seen.append(m.__name__))
    with pytest.raises(ValueError, match="the program broke"):
        import tl_hookmod
    assert seen == []

    package.write_text("VALUE = 1\n")
    sys.modules.pop("tl_hookmod", None)
    import importlib

    importlib.invalidate_caches()
    import tl_hookmod  # noqa: F401

    assert seen == ["tl_hookmod"]


def test_a_raising_callback_does_not_break_the_import(package, capsys):
    """A callback that raises is reported once on stderr; the import succeeds."""
    package.write_text("VALUE = 7\n")

    def boom(m):
        raise RuntimeError("patch failed")

    _hooks.when_imported("tl_hookmod", boom)
    import tl_hookmod

    assert tl_hookmod.VALUE == 7
    assert "could not instrument tl_hookmod" in capsys.readouterr().err
